"""Record accounting for one sync: every record the source sent is landed, rejected or reported.

PyAirbyte's reader parses each line a connector writes; a line that does not parse (an unpaired
surrogate escape, JSON nested past the parser's depth) is logged at INFO and skipped, and the
sync succeeds one record short. Here:

- `recording_into` catches each line the reader could not parse (handed over by
  `airbyte_internals.unparsable_lines_to`) while a `CopyPostgresCache` is reading: a line that
  looks like an Airbyte message is *rejected*, kept with its stream and the parser's reason for
  the dead-letter table. `watch_source` counts the connector's lines (sync_connector's runs).
- the cache counts, per stream, the records it staged, the rows that landed in the loading table,
  the records quarantined (a null primary key), the values it had to change and the duplicate
  keys a merge resolved (see `StreamCounts`);
- the source's own count, when it reports one (`sourceStats.recordCount` on its state messages),
  is summed too, so a record that never reached the reader is seen as well.

`StreamCounts.unaccounted()` is what is left when every record is either landed or in the
dead-letter table: it must be 0, and the connector YAML's `bad_data.count_mismatch` decides
whether a non-zero count fails the sync (the default) or is only reported.

The dead-letter table, `<cache schema>._dead_letter_<connector>`, holds the raw line, the stream,
the reason and the run id: a record can be repaired and replayed from it, and nothing the source
sent is dropped without a trace.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from pyairbyte.utils.column_names import truncate

# A raw line longer than this is kept cut, with its full length in the reason: a dead-letter
# row must not become the next limit to hit (PostgreSQL's text values stop at 1 GB).
MAX_DEAD_LETTER_BYTES = 1 << 20
_STREAM_IN_LINE = re.compile(r'"stream"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass
class DeadLetter:
    stream: str
    reason: str
    raw: str


@dataclass
class StreamCounts:
    """What happened to one stream's records in this sync."""

    emitted: int = 0  # records the reader parsed (counted as the cache receives them)
    rejected: int = 0  # lines that looked like this stream's records but did not parse
    source_stated: int | None = None  # the source's own count (sourceStats), when it gives one
    quarantined: int = 0  # records kept out of the table (null primary key): dead-letter table
    landed: int = 0  # rows that reached the loading table
    values_changed: int = 0  # values nulled or stripped, each recorded in _airbyte_meta.changes
    duplicate_keys: int = 0  # rows a merge dropped because a later record had the same key
    schema_changes: list[str] = field(default_factory=list)

    def unaccounted(self) -> int:
        """Records sent but neither landed nor in the dead-letter table (0 when all is well)."""
        sent = self.emitted + self.rejected
        if self.source_stated is not None:
            sent = max(sent, self.source_stated)
        return sent - self.rejected - self.quarantined - self.landed

    def as_dict(self) -> dict[str, Any]:
        return {
            "records_emitted": self.emitted + self.rejected,
            "records_source_stated": self.source_stated,
            "records_landed": self.landed,
            "records_rejected": self.rejected + self.quarantined,
            "records_unaccounted": self.unaccounted(),
            "values_changed": self.values_changed,
            "duplicate_keys_resolved": self.duplicate_keys,
            "schema_changes": list(self.schema_changes),
        }


class SyncLedger:
    """The counts of one sync, shared by the reader's thread and the loaders' threads."""

    def __init__(self, connector_name: str = "", run_id: str | None = None) -> None:
        self.connector_name = connector_name
        self.run_id = run_id
        self.lines = 0
        self.streams: dict[str, StreamCounts] = {}
        self.dead_letters: list[DeadLetter] = []  # not yet written to the dead-letter table
        self.lock = threading.Lock()

    def stream(self, name: str) -> StreamCounts:
        counts = self.streams.get(name)
        if counts is None:
            with self.lock:
                counts = self.streams.setdefault(name, StreamCounts())
        return counts

    def dead_letter(self, stream: str, reason: str, raw: str) -> None:
        if len(raw.encode(errors="replace")) > MAX_DEAD_LETTER_BYTES:
            reason += f" (line of {len(raw)} characters, kept cut to {MAX_DEAD_LETTER_BYTES} bytes)"
            raw = truncate(raw.encode(errors="replace").decode(), MAX_DEAD_LETTER_BYTES)
        with self.lock:
            self.dead_letters.append(DeadLetter(stream, reason, raw))

    # ---- the reader's side ---------------------------------------------------------------------

    def count_message(self, message: Any) -> None:
        """Called for every message the reader parsed: sums the source's own record counts."""
        from airbyte_protocol.models import Type

        if message.type is Type.STATE and message.state is not None:
            stats = message.state.sourceStats
            stream_state = message.state.stream
            if stats is not None and stats.recordCount is not None and stream_state is not None:
                counts = self.stream(stream_state.stream_descriptor.name)
                counts.source_stated = (counts.source_stated or 0) + int(stats.recordCount)

    def reject_line(self, line: str) -> None:
        """A line the reader could not parse: a rejected record if it looks like a message."""
        text = line.strip()
        if not text.startswith("{") or '"type"' not in text:
            return  # a plain log line the connector printed
        reason = _parse_failure(text)
        if reason is None:
            return  # it parses: PyAirbyte logged a message, not a failed line
        match = _STREAM_IN_LINE.search(text)
        stream = json.loads(f'"{match.group(1)}"', strict=False) if match else ""
        self.stream(stream).rejected += 1
        self.dead_letter(stream, f"the reader could not parse the line: {reason}", text)


def _parse_failure(line: str) -> str | None:
    from airbyte_protocol.models import AirbyteMessage

    try:
        AirbyteMessage.model_validate_json(line)
    except Exception as error:  # pydantic's ValidationError, or a JSON error
        return " ".join(str(error).split())[:300]
    return None


def recording_into(ledger: SyncLedger):
    """While a cache processes a read, lines the reader cannot parse go to `ledger` (the
    reader parses in the thread that consumes the messages, which is the cache's).

    PyAirbyte logs and skips such a line; `airbyte_internals.unparsable_lines_to` hands it to
    us too, and the unparsable-line tests of test_hostile_data.py fail if it stops doing so."""
    from pyairbyte.utils.airbyte_internals import unparsable_lines_to

    return unparsable_lines_to(ledger.reject_line)


def watch_source(source: Any, ledger: SyncLedger) -> None:
    """Count every line the source's connector writes (`ledger.lines`), parsed or not.

    Wraps the executor's public line iterator (`source.executor.execute`; test_hostile_data.py
    checks the count)."""
    if getattr(source, "_dataplatform_ledger", None) is ledger:
        return
    source._dataplatform_ledger = ledger
    executor = source.executor
    execute = executor.execute

    def counted_execute(*args: Any, **kwargs: Any):
        for line in execute(*args, **kwargs):
            ledger.lines += 1
            yield line

    executor.execute = counted_execute


# ---- the dead-letter table ---------------------------------------------------------------------


def dead_letter_table(connector_name: str) -> str:
    from pyairbyte.utils.column_names import normalize

    return truncate(f"_dead_letter_{normalize(connector_name)}")


DEAD_LETTER_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    id bigserial PRIMARY KEY,
    run_id text,
    stream text NOT NULL,
    reason text NOT NULL,
    raw_line text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""
DEAD_LETTER_INSERT = (
    "INSERT INTO {table} (run_id, stream, reason, raw_line) VALUES (%s, %s, %s, %s)"
)
