"""Event store in PostgreSQL: write events once, hand them to handlers, record the outcome.

Events live in `<EVENT_STORE_SCHEMA>.events`, created on first use (safe when several processes
start at once). Each event's content hash (event type + canonical JSON of its data) carries a
unique constraint, so the same event is stored once even with concurrent writers; writers insert
with ON CONFLICT DO NOTHING and count what was skipped.

Events are handed out oldest first (by id); `bulk_write_events` numbers them in input order.

Lifecycle: pending -> processing (attempts + 1) -> processed | failed; failed events are picked up
again by `get_unprocessed_or_failed_events` until they reach `max_attempts`.

Claiming (`mark_event_processing`) is one conditional UPDATE, so of two processors racing for an
event exactly one gets it. A claim is a lease: an event still `processing` after
EVENT_STORE_LEASE_SECONDS belongs to a processor that crashed (or was killed) mid-event, and is
handed out and claimed again like a failed one (its attempt counted). Keep the lease above the
longest handler run, or a slow handler's event is processed twice.

Results are plain values (`WrittenEvent`, `BulkWriteResult`, event dicts). A database failure
raises `pyairbyte.errors.EventStoreError` (with the counts of what was committed, for bulk
writes), and an unknown event id `EventNotFoundError`; bad input raises ValueError.

Settings come from `event_store_settings()`, read at each call:

| env var                     | default       | meaning                                        |
|-----------------------------|---------------|------------------------------------------------|
| POSTGRES_*                  | see settings  | the database (pyairbyte.settings)              |
| EVENT_STORE_SCHEMA          | event_store   | schema holding the `events` table              |
| EVENT_STORE_BATCH_SIZE      | 1000          | rows per INSERT batch in bulk_write_events     |
| EVENT_STORE_MAX_ATTEMPTS    | 5             | failed events with this many attempts are no   |
|                             |               | longer returned for processing                 |
| EVENT_STORE_LEASE_SECONDS   | 300           | a `processing` event older than this is taken  |
|                             |               | back (its processor crashed)                   |
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql
from psycopg2.extras import Json, RealDictCursor, execute_values
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pyairbyte import settings
from pyairbyte.errors import EventNotFoundError, EventStoreError
from pyairbyte.utils import pg
from pyairbyte.utils.pg_copy import check_identifier, lock_key


class EventStoreSettings(settings.EnvSettings):
    model_config = SettingsConfigDict(env_prefix="EVENT_STORE_")

    schema_name: str = Field("event_store", validation_alias="EVENT_STORE_SCHEMA")
    batch_size: settings.PositiveInt = 1000
    max_attempts: settings.PositiveInt = 5
    # An event `processing` for longer than this is taken to belong to a crashed processor and
    # is claimed again. Keep it above the longest handler run.
    lease_seconds: settings.Seconds = 300.0


def event_store_settings() -> EventStoreSettings:
    return settings.load(EventStoreSettings)


STATUSES = ("pending", "processing", "processed", "failed")
MAX_ERROR_CHARS = 4000

_ensured: set[tuple] = set()  # (dsn, schema) pairs whose table exists, to skip the DDL


@dataclass(frozen=True)
class WrittenEvent:
    event_id: int
    created: bool  # False for a duplicate; event_id is then the id of the event already stored


@dataclass(frozen=True)
class BulkWriteResult(Mapping):
    """Typed, and still the guide's dict: `bulk_result['events_created']`, `.get('status')`,
    `dict(bulk_result)` all work (the guide's assets index it like the dict it showed)."""

    events_created: int
    duplicates_skipped: int
    total: int
    batches: int
    status: str = "success"

    def __getitem__(self, key: str) -> object:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)


def event_store_schema() -> str:
    return check_identifier(event_store_settings().schema_name, "EVENT_STORE_SCHEMA")


def _events_table():
    return sql.Identifier(event_store_schema(), "events")


def _create_event_hash(event_type: str, event_data) -> str:
    """sha256 over the type and the canonical JSON of the data (sorted keys, no spacing)."""
    canonical = json.dumps(
        {"event_type": event_type, "event_data": event_data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_DDL = """
create table if not exists {table} (
    id bigserial primary key,
    event_type text not null,
    event_data jsonb not null,
    event_hash text not null,
    status text not null default 'pending'
        check (status in ('pending', 'processing', 'processed', 'failed')),
    attempts integer not null default 0,
    last_error text,
    response_status_code integer,
    response_body text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    processed_at timestamptz,
    constraint {hash_key} unique (event_hash)
);
create index if not exists {type_status_idx} on {table} (event_type, status);
"""


def ensure_event_store(conn) -> None:
    """Create the schema, table and index if missing (idempotent, safe under concurrency)."""
    schema = event_store_schema()
    key = (conn.dsn, schema)
    if key in _ensured:
        return
    with conn.cursor() as cur:
        # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog; serialise them.
        cur.execute("select pg_advisory_xact_lock(%s)", (lock_key("event_store", schema),))
        cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        cur.execute(
            sql.SQL(_DDL).format(
                table=_events_table(),
                hash_key=sql.Identifier("events_event_hash_key"),
                type_status_idx=sql.Identifier("events_type_status_idx"),
            )
        )
    conn.commit()
    _ensured.add(key)


@contextmanager
def _connection():
    """A connection to the event store; a database failure becomes EventStoreError."""
    try:
        conn = pg.connect()
    except psycopg2.Error as exc:
        raise EventStoreError(f"cannot connect to the event store's PostgreSQL: {exc}") from exc
    try:
        ensure_event_store(conn)
        yield conn
    except psycopg2.Error as exc:
        raise EventStoreError(
            f"event store {event_store_schema()}.events: {type(exc).__name__}: {exc}".strip()
        ) from exc
    finally:
        conn.close()


def _validate_event(event_type, event_data, where: str) -> None:
    if not isinstance(event_type, str) or not event_type.strip():
        raise ValueError(f"{where}: event_type must be a non-empty string, got {event_type!r}")
    try:
        json.dumps(event_data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{where}: event_data for {event_type!r} is not JSON-serialisable ({exc}); "
            "convert dates, decimals and other objects to strings or numbers first"
        ) from None


def write_event(event_type: str, event_data) -> WrittenEvent:
    """Store one event; a duplicate of an existing event is not stored again."""
    _validate_event(event_type, event_data, "write_event")
    event_hash = _create_event_hash(event_type, event_data)
    with _connection() as conn, conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "insert into {} (event_type, event_data, event_hash) values (%s, %s, %s) "
                "on conflict (event_hash) do nothing returning id"
            ).format(_events_table()),
            (event_type, Json(event_data), event_hash),
        )
        row = cur.fetchone()
        created = row is not None
        if not created:
            cur.execute(
                sql.SQL("select id from {} where event_hash = %s").format(_events_table()),
                (event_hash,),
            )
            row = cur.fetchone()
        conn.commit()
    return WrittenEvent(event_id=row[0], created=created)


def bulk_write_events(
    events_to_insert: list[Mapping], batch_size: int | None = None
) -> BulkWriteResult:
    """Insert many events in batches, skipping duplicates (in the input or already stored).

    Each item is {"event_type": str, "event_data": <JSON-serialisable>}. All items are validated
    before anything is written; a bad item raises ValueError naming its index and field.

    A database error raises EventStoreError whose `events_created` and `batches` count the
    batches committed before it; those stay (rerunning is safe, since duplicates are skipped).
    """
    batch_size = batch_size or event_store_settings().batch_size
    if not isinstance(events_to_insert, list | tuple):
        raise ValueError(
            f"bulk_write_events: events_to_insert must be a list of dicts, got "
            f"{type(events_to_insert).__name__}"
        )
    rows: dict[str, tuple] = {}
    for index, event in enumerate(events_to_insert):
        if not isinstance(event, Mapping) or "event_type" not in event or "event_data" not in event:
            raise ValueError(
                f"bulk_write_events: item {index} must be a dict with keys 'event_type' and "
                f"'event_data', got {event!r:.120}"
            )
        _validate_event(event["event_type"], event["event_data"], f"bulk_write_events item {index}")
        event_hash = _create_event_hash(event["event_type"], event["event_data"])
        rows.setdefault(event_hash, (event["event_type"], Json(event["event_data"]), event_hash))

    total = len(events_to_insert)
    unique = list(rows.values())  # input order (dicts keep insertion order)
    created = batches = 0
    insert = sql.SQL(
        "insert into {} (id, event_type, event_data, event_hash) values %s "
        "on conflict (event_hash) do nothing returning id"
    ).format(_events_table())
    take_ids = sql.SQL(
        "select nextval(pg_get_serial_sequence(%s, 'id')) from generate_series(1, %s)"
    )
    with _connection() as conn:
        try:
            insert_sql = insert.as_string(conn)
            table_name = _events_table().as_string(conn)
            for start in range(0, len(unique), batch_size):
                batch = unique[start : start + batch_size]
                with conn.cursor() as cur:
                    # Ids are taken in input order, so handlers (oldest id first) see events in
                    # the order they were given; rows are then inserted in hash order, which
                    # gives every writer the same lock order, so concurrent writers of
                    # overlapping batches wait for each other instead of deadlocking.
                    cur.execute(take_ids, (table_name, len(batch)))
                    ids = sorted(r[0] for r in cur.fetchall())
                    with_ids = sorted(
                        ((i, *row) for i, row in zip(ids, batch, strict=True)),
                        key=lambda r: r[3],
                    )
                    inserted = execute_values(
                        cur, insert_sql, with_ids, page_size=len(with_ids), fetch=True
                    )
                conn.commit()
                created += len(inserted)
                batches += 1
        except psycopg2.Error as exc:
            raise EventStoreError(
                f"bulk_write_events failed after {batches} committed batches "
                f"({created} events created): {type(exc).__name__}: {exc}".strip(),
                events_created=created,
                batches=batches,
            ) from exc
    return BulkWriteResult(
        events_created=created, duplicates_skipped=total - created, total=total, batches=batches
    )


_EVENT_COLUMNS = sql.SQL(
    "id, event_type, event_data, status, attempts, last_error, response_status_code, "
    "response_body, created_at, updated_at, processed_at"
)


# An event a processor may claim: pending, failed with attempts left, or processing with an
# expired lease (its processor died). Parameters: max_attempts, max_attempts, lease seconds.
_CLAIMABLE = sql.SQL(
    "(status = 'pending' or (status = 'failed' and attempts < %s) "
    "or (status = 'processing' and attempts < %s "
    "and updated_at < now() - make_interval(secs => %s)))"
)


def _claim_params(max_attempts: int | None, lease_seconds: float | None) -> list:
    store = event_store_settings()
    attempts = max_attempts or store.max_attempts
    return [attempts, attempts, float(lease_seconds or store.lease_seconds)]


def get_unprocessed_or_failed_events(
    event_type: str,
    limit: int | None = None,
    max_attempts: int | None = None,
    lease_seconds: float | None = None,
) -> list[dict]:
    """Events of `event_type` that are pending, failed with fewer than max_attempts attempts,
    or left `processing` longer than the lease (EVENT_STORE_LEASE_SECONDS) by a processor that
    crashed.

    Oldest first. Events being processed (within their lease) or processed are never returned.
    """
    query = sql.SQL("select {cols} from {table} where event_type = %s and {claimable} order by id")
    query = query.format(cols=_EVENT_COLUMNS, table=_events_table(), claimable=_CLAIMABLE)
    params: list = [event_type, *_claim_params(max_attempts, lease_seconds)]
    if limit is not None:
        query = query + sql.SQL(" limit %s")
        params.append(int(limit))
    with _connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(query, params)
        return [dict(r) for r in cur.fetchall()]


def get_event(event_id: int) -> dict | None:
    with _connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            sql.SQL("select {} from {} where id = %s").format(_EVENT_COLUMNS, _events_table()),
            (event_id,),
        )
        row = cur.fetchone()
        return dict(row) if row else None


def mark_event_processing(
    event_id: int, max_attempts: int | None = None, lease_seconds: float | None = None
) -> dict | None:
    """Claim an event for processing and count the attempt: a pending one, a failed one with
    attempts left, or one whose processor's lease expired (see the module docstring).

    Returns the claimed event, or None when it does not exist, another handler holds its lease,
    or it is already processed, so two handlers never process the same event at once (the
    UPDATE re-checks the condition on the row it waited for).
    """
    with _connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            sql.SQL(
                "update {table} set status = 'processing', attempts = attempts + 1, "
                "last_error = null, updated_at = now() "
                "where id = %s and {claimable} returning {cols}"
            ).format(table=_events_table(), cols=_EVENT_COLUMNS, claimable=_CLAIMABLE),
            (event_id, *_claim_params(max_attempts, lease_seconds)),
        )
        row = cur.fetchone()
        conn.commit()
        return dict(row) if row else None


def _finish(event_id, status, error, response_status_code, response_body) -> dict:
    with _connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            sql.SQL(
                "update {table} set status = %s, last_error = %s, response_status_code = %s, "
                "response_body = %s, updated_at = now(), "
                "processed_at = case when %s = 'processed' then now() else processed_at end "
                "where id = %s returning {cols}"
            ).format(table=_events_table(), cols=_EVENT_COLUMNS),
            (status, error, response_status_code, response_body, status, event_id),
        )
        row = cur.fetchone()
        conn.commit()
    if row is None:
        raise EventNotFoundError(
            f"event {event_id} does not exist in {event_store_schema()}.events"
        )
    return dict(row)


def mark_event_processed(
    event_id: int, response_status_code: int | None = None, response_body: str | None = None
) -> dict:
    """Record success; returns the updated event."""
    return _finish(event_id, "processed", None, response_status_code, response_body)


def mark_event_failed(
    event_id: int,
    error: str,
    response_status_code: int | None = None,
    response_body: str | None = None,
) -> dict:
    """Record a failure with its error text (truncated); the event is retried later until it
    reaches max_attempts (attempts are counted by mark_event_processing)."""
    error = str(error)
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + "... [truncated]"
    return _finish(event_id, "failed", error, response_status_code, response_body)
