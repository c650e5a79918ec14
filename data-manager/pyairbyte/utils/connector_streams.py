"""Which streams a connector has, and which field each one's incremental cursor is.

Read from the connector YAML and its declarative manifest (no connector runs, no `import
airbyte`), and from a stream's stored state: `connector state show` uses these to label what
the cache's `_airbyte_state` rows hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["connector_streams", "cursor_of", "manifest_streams"]

# Keys the CDK puts into a stream's state next to (or instead of) the cursor.
_STATE_META_KEYS = {
    "state_type",
    "legacy",
    "slices",
    "states",
    "state",
    "parent_state",
    "use_global_cursor",
}


def _resolve_ref(manifest: Mapping, value: Any) -> Any:
    ref = value.get("$ref") if isinstance(value, Mapping) else None
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return value
    target: Any = manifest
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, Mapping) else None
    return {**target, **{k: v for k, v in value.items() if k != "$ref"}} if target else value


def manifest_streams(manifest: Mapping | None) -> dict[str, str | None]:
    """Stream name -> cursor field (None: not incremental) of a declarative manifest."""
    streams: dict[str, str | None] = {}
    for raw in (manifest or {}).get("streams") or []:
        stream = _resolve_ref(manifest, raw)
        if not isinstance(stream, Mapping):
            continue
        name = stream.get("name") or (stream.get("$parameters") or {}).get("name")
        if not isinstance(name, str):
            continue
        incremental = _resolve_ref(manifest, stream.get("incremental_sync"))
        cursor = incremental.get("cursor_field") if isinstance(incremental, Mapping) else None
        # A cursor field given as Jinja (e.g. from config) is only known at run time.
        streams[name] = cursor if isinstance(cursor, str) and "{{" not in cursor else None
    return streams


def connector_streams(name: str) -> tuple[str, dict[str, str | None], str | None]:
    """(the YAML's `name`, its streams -> cursor field, a warning) for connector YAML `name`.

    Raises `UnknownConnectorError` if no connector YAML has that name. A YAML that does not load
    (e.g. an unset ${VAR}) still names the source whose state the cache holds: its streams are
    then unknown, and the warning says why.
    """
    import yaml

    from pyairbyte.errors import ConnectorConfigError, UnknownConnectorError
    from pyairbyte.utils.connector_config import get_connector_by_name
    from pyairbyte.utils.connector_files import find_connector_file

    try:
        path = find_connector_file(name)
    except ConnectorConfigError as exc:
        raise UnknownConnectorError(str(exc)) from None
    try:
        config = get_connector_by_name(name)
    except ConnectorConfigError as exc:
        try:
            raw = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, OSError):
            raw = None
        declared = raw.get("name") if isinstance(raw, dict) else None
        return declared if isinstance(declared, str) else name, {}, f"warning: {exc}"
    streams = manifest_streams(config.source_manifest)
    for stream in config.streams or []:
        streams.setdefault(stream, None)
    return config.name, streams, None


def cursor_of(stream_state: Any, hint: str | None) -> tuple[str | None, str | None]:
    """(cursor field, a readable cursor value) from a stream's stored state."""
    if not isinstance(stream_state, Mapping) or not stream_state:
        return hint, None
    plain = [k for k in stream_state if k not in _STATE_META_KEYS and not k.startswith("__ab")]
    field_name = hint if hint in stream_state else (plain[0] if len(plain) == 1 else hint)
    if field_name and field_name in stream_state:
        return field_name, str(stream_state[field_name])
    inner = stream_state.get("state")  # per-partition state with a global cursor
    if isinstance(inner, Mapping) and field_name in inner:
        return field_name, str(inner[field_name])
    slices = stream_state.get("slices")
    if isinstance(slices, list) and slices:
        ends = [
            str(s.get("most_recent_cursor_value") or s.get("end"))
            for s in slices
            if isinstance(s, Mapping) and (s.get("most_recent_cursor_value") or s.get("end"))
        ]
        return field_name, max(ends) if ends else None
    partitions = stream_state.get("states")
    if isinstance(partitions, list):
        return field_name, f"({len(partitions)} partitions)"
    if not plain:  # e.g. the CDK's {"__ab_no_cursor_state_message": true} for a full refresh
        return field_name, None
    text = json.dumps(stream_state, default=str, sort_keys=True)
    return field_name, text if len(text) <= 60 else text[:57] + "..."
