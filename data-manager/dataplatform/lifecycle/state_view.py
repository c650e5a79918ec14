"""`dataplatform connector state show`: a connector's stored sync state as a plain-text table."""

from __future__ import annotations

from datetime import datetime

from pyairbyte.utils.connector_state import ConnectorState


def _when(stamp: datetime | None) -> str:
    return stamp.isoformat(sep=" ", timespec="seconds") if stamp else "-"


def render_state(state: ConnectorState) -> str:
    """A plain-text table: stream, cursor field, cursor value, last sync, rows."""
    header = ("stream", "cursor field", "cursor value", "last sync", "rows")
    lines = [
        (
            s.stream,
            s.cursor_field or "-",
            (s.cursor_value or "-") if s.has_state else "(no state: next sync reads all)",
            _when(s.last_sync_at),
            "-" if s.rows is None else str(s.rows),
        )
        for s in state.streams
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = [f"connector {state.connector}, cache schema {state.schema}"]
    if not lines:
        out.append("no stored state and no known streams: never synced into this cache")
        return "\n".join(out)
    for row in [header, *lines]:
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(out)
