"""A connector's PyAirbyte sync state in the PostgreSQL cache: read it, or reset it.

Where PyAirbyte 0.71 keeps it, in each cache schema:
- `_airbyte_state`: one row per cache table, primary key `table_name` (the cache's table prefix +
  the stream name, before name normalisation), with `source_name` (the name given to
  `get_source`, i.e. the connector YAML's `name`), `stream_name`, the state message as JSON and
  `last_updated`. `_GLOBAL` / `_LEGACY` rows hold a whole-source state. These rows are the only
  record of which connector a cache table belongs to, so this module selects by `source_name`
  and never touches a row, or a table, that another connector's row names.
- `_airbyte_streams` is keyed by table but records the cache's class name, not the source, so
  it says nothing about ownership; it is left alone (each sync rewrites it).

Reset semantics. With no stored state an incremental stream reads everything again, but the
write strategy PyAirbyte picks (`auto`) does not change: a stream without a primary key
*appends*, so the table would hold every row twice; with a primary key it merges, keeping rows
the source has since deleted. A reset therefore empties the stream's table (TRUNCATE, which
keeps its columns and the views on it) in the same transaction that deletes the state rows.
The next sync then loads exactly the source's rows, like Airbyte's own "clear data". Until it
runs, the table is empty.

Last sync time. PyAirbyte 0.71 stamps `last_updated` with a default that is evaluated once per
process (when `airbyte` is imported), so it tells when the syncing process started, not when
the row was written. `last_sync_at` is the later of that and the newest
`_airbyte_extracted_at` in the table; both are lower bounds of the real time.

Everything here is plain psycopg2 on the cache's connection settings (`common_cache`), so it
costs no `import airbyte`. Identifiers are quoted with `psycopg2.sql.Identifier`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from pyairbyte.errors import ConnectorStateError, UnknownStreamError
from pyairbyte.utils import column_names, pg
from pyairbyte.utils.connector_streams import cursor_of

__all__ = [
    "ConnectorState",
    "ResetPlan",
    "StreamState",
    "apply_reset",
    "cache_table_name",
    "plan_reset",
    "read_connector_state",
]

STATE_TABLE = "_airbyte_state"
WHOLE_SOURCE_STREAMS = ("_GLOBAL", "_LEGACY")
# How long a reset waits for a table lock (a running sync holds one) before giving up.
RESET_LOCK_TIMEOUT = "10s"


def cache_table_name(raw: str) -> str:
    """PyAirbyte's table name for `prefix + stream` (its LowerCaseNormalizer, 0.71), as
    PostgreSQL stores it (cut to 63 bytes)."""
    return column_names.normalize(raw)


@dataclass(frozen=True)
class StreamState:
    stream: str
    table: str | None  # the cache table; None for a whole-source (_GLOBAL/_LEGACY) row
    has_state: bool
    cursor_field: str | None = None
    cursor_value: str | None = None
    stream_state: Any = None  # the CDK's state for the stream, as stored
    state_saved_at: datetime | None = None
    last_record_at: datetime | None = None
    rows: int | None = None  # None: the table does not exist

    @property
    def last_sync_at(self) -> datetime | None:
        stamps = [t for t in (self.state_saved_at, self.last_record_at) if t is not None]
        return max(stamps) if stamps else None


@dataclass(frozen=True)
class ConnectorState:
    connector: str
    schema: str
    streams: list[StreamState]

    @property
    def stored(self) -> list[StreamState]:
        return [s for s in self.streams if s.has_state]


@dataclass(frozen=True)
class ResetPlan:
    connector: str
    schema: str
    stream: str | None  # None: every stream of the connector
    state_rows: list[str] = field(default_factory=list)  # stream names of the rows to delete
    tables: dict[str, int | None] = field(default_factory=dict)  # table -> rows it holds now

    @property
    def empty(self) -> bool:
        return not self.state_rows

    def describe(self) -> str:
        what = f"stream {self.stream!r} of" if self.stream else "every stream of"
        if self.empty:
            return (
                f"{what} connector {self.connector!r} has no stored state in schema "
                f"{self.schema}: its next sync already reads everything. Nothing to reset."
            )
        lines = [f"reset {what} connector {self.connector!r} in schema {self.schema}:"]
        lines += [f"  delete state of {s}" for s in self.state_rows]
        for table, count in self.tables.items():
            held = "missing" if count is None else f"{count} rows"
            lines.append(f"  empty table {self.schema}.{table} ({held})")
        lines.append("the next sync reads these streams in full and reloads the tables.")
        return "\n".join(lines)


# --- database --------------------------------------------------------------------------------


def _cache_target(cache_name: str, cache_config: Mapping[str, Any] | None) -> tuple[dict, str]:
    from pyairbyte.utils.common_cache import CACHE_CONFIGS

    config = dict(cache_config) if cache_config is not None else CACHE_CONFIGS[cache_name]
    return pg.params_from_cache(config), config["schema_name"]


def _connect(kwargs: dict, what: str):
    try:
        return pg.connect(kwargs)
    except psycopg2.Error as exc:
        raise ConnectorStateError(
            f"cannot {what}: PostgreSQL at {kwargs['host']}:{kwargs['port']} "
            f"(database {kwargs['dbname']}) refused the connection: {str(exc).strip()}. "
            "Fix: start PostgreSQL or set POSTGRES_HOST/PORT/USER/PASSWORD/DB"
        ) from exc


def _table_exists(cur, schema: str, table: str) -> bool:
    cur.execute(
        "select to_regclass(%s) is not null", (sql.Identifier(schema, table).as_string(cur),)
    )
    return bool(cur.fetchone()[0])


@dataclass(frozen=True)
class _Row:
    stream: str
    table_name: str  # as stored: prefix + stream, not normalised
    state: dict
    last_updated: datetime | None

    @property
    def whole_source(self) -> bool:
        return self.stream in WHOLE_SOURCE_STREAMS

    def covered_streams(self) -> list[str]:
        """The streams whose tables this row's state stands for."""
        if not self.whole_source:
            return [self.stream]
        stream_states = (self.state.get("global_") or self.state.get("global") or {}).get(
            "stream_states"
        ) or []
        names = [((s.get("stream_descriptor") or {}).get("name")) for s in stream_states]
        return [n for n in names if isinstance(n, str)]

    @property
    def prefix(self) -> str:
        return self.table_name[: len(self.table_name) - len(self.stream)]

    def tables(self) -> list[str]:
        return [cache_table_name(self.prefix + s) for s in self.covered_streams()]


def _state_rows(cur, schema: str, connector: str, *, lock: bool = False) -> list[_Row]:
    if not _table_exists(cur, schema, STATE_TABLE):
        return []
    query = sql.SQL(
        "select stream_name, table_name, state_json, last_updated from {} "
        "where source_name = %s order by stream_name, table_name{}"
    ).format(sql.Identifier(schema, STATE_TABLE), sql.SQL(" for update" if lock else ""))
    cur.execute(query, (connector,))
    rows = []
    for stream, table_name, state_json, last_updated in cur.fetchall():
        try:
            state = json.loads(state_json or "{}")
        except json.JSONDecodeError:
            state = {}
        rows.append(_Row(stream, table_name, state, last_updated))
    return rows


def _table_facts(cur, schema: str, table: str) -> tuple[int | None, datetime | None]:
    if not _table_exists(cur, schema, table):
        return None, None
    cur.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table)))
    count = cur.fetchone()[0]
    cur.execute(
        "select 1 from information_schema.columns where table_schema = %s and table_name = %s "
        "and column_name = '_airbyte_extracted_at'",
        (schema, table),
    )
    if cur.fetchone() is None:
        return count, None
    cur.execute(
        sql.SQL("select max(_airbyte_extracted_at) from {}").format(sql.Identifier(schema, table))
    )
    return count, cur.fetchone()[0]


def _other_owners(cur, schema: str, connector: str, tables: Iterable[str]) -> dict[str, str]:
    """Tables among `tables` that another connector's state row names (table -> connector)."""
    cur.execute(
        sql.SQL("select table_name, source_name from {} where source_name <> %s").format(
            sql.Identifier(schema, STATE_TABLE)
        ),
        (connector,),
    )
    wanted = set(tables)
    return {
        cache_table_name(table_name): source
        for table_name, source in cur.fetchall()
        if cache_table_name(table_name) in wanted
    }


# --- the API ---------------------------------------------------------------------------------


def read_connector_state(
    connector: str,
    *,
    streams: Mapping[str, str | None] | None = None,
    table_prefix: str = "",
    cache_name: str = "default",
    cache_config: Mapping[str, Any] | None = None,
) -> ConnectorState:
    """The stored state of every stream of `connector` (the YAML's `name`) in a cache schema.

    `streams` (name -> cursor field, e.g. from `manifest_streams`) adds the streams the connector
    declares but has no state for yet, and names cursor fields; their tables are looked up
    with `table_prefix` (the default cache uses none). `cache_config` replaces the named
    cache's settings (keys as in `common_cache.CACHE_CONFIGS`).
    """
    kwargs, schema = _cache_target(cache_name, cache_config)
    hints = dict(streams or {})
    conn = _connect(kwargs, f"read the state of {connector}")
    try:
        with conn.cursor() as cur:
            rows = _state_rows(cur, schema, connector)
            result: list[StreamState] = []
            seen = set()
            for row in rows:
                seen.add(row.stream)
                stream_state = (row.state.get("stream") or {}).get("stream_state")
                if row.whole_source:
                    stream_state = row.state.get("global_") or row.state.get("data")
                    field_name, value = None, f"(whole-source state: {len(row.tables())} tables)"
                    count, last_record = None, None
                    table = None
                else:
                    field_name, value = cursor_of(stream_state, hints.get(row.stream))
                    table = cache_table_name(row.table_name)
                    count, last_record = _table_facts(cur, schema, table)
                result.append(
                    StreamState(
                        stream=row.stream,
                        table=table,
                        has_state=True,
                        cursor_field=field_name,
                        cursor_value=value,
                        stream_state=stream_state,
                        state_saved_at=row.last_updated,
                        last_record_at=last_record,
                        rows=count,
                    )
                )
            for stream in sorted(set(hints) - seen):
                table = cache_table_name(table_prefix + stream)
                count, last_record = _table_facts(cur, schema, table)
                result.append(
                    StreamState(
                        stream=stream,
                        table=table,
                        has_state=False,
                        cursor_field=hints[stream],
                        last_record_at=last_record,
                        rows=count,
                    )
                )
        conn.rollback()
    except psycopg2.Error as exc:
        raise ConnectorStateError(
            f"cannot read the state of {connector} in schema {schema}: {str(exc).strip()}"
        ) from exc
    finally:
        conn.close()
    return ConnectorState(connector=connector, schema=schema, streams=result)


def _plan(cur, schema: str, connector: str, stream: str | None, known: Iterable[str], lock: bool):
    rows = _state_rows(cur, schema, connector, lock=lock)
    if stream is not None:
        whole = [r for r in rows if r.whole_source]
        if whole:
            raise ConnectorStateError(
                f"{connector} keeps one state for all its streams ({whole[0].stream}), so stream "
                f"{stream!r} cannot be reset alone. Fix: reset the whole connector (no --stream)"
            )
        names = {r.stream for r in rows} | set(known)
        if stream not in names:
            raise UnknownStreamError(
                f"connector {connector} has no stream {stream!r} (in schema {schema}); its "
                f"streams: {', '.join(sorted(names)) or '(none known: never synced)'}"
            )
        rows = [r for r in rows if r.stream == stream]
    tables = sorted({t for r in rows for t in r.tables()})
    owners = _other_owners(cur, schema, connector, tables) if rows else {}
    if owners:
        claimed = ", ".join(f"{t} ({o})" for t, o in sorted(owners.items()))
        raise ConnectorStateError(
            f"the tables {claimed} also hold another connector's state in schema {schema}; "
            f"resetting {connector} would empty them. Fix: give the connectors their own table "
            "prefix or cache schema"
        )
    return rows, tables


def plan_reset(
    connector: str,
    stream: str | None = None,
    *,
    known_streams: Iterable[str] = (),
    cache_name: str = "default",
    cache_config: Mapping[str, Any] | None = None,
) -> ResetPlan:
    """What `apply_reset` would delete and empty; changes nothing.

    Raises `UnknownStreamError` if `stream` has no state row and is not in `known_streams`.
    """
    kwargs, schema = _cache_target(cache_name, cache_config)
    conn = _connect(kwargs, f"plan the reset of {connector}")
    try:
        with conn.cursor() as cur:
            rows, tables = _plan(cur, schema, connector, stream, known_streams, lock=False)
            counts = {t: _table_facts(cur, schema, t)[0] for t in tables}
        conn.rollback()
    except psycopg2.Error as exc:
        raise ConnectorStateError(
            f"cannot read the state of {connector} in schema {schema}: {str(exc).strip()}"
        ) from exc
    finally:
        conn.close()
    return ResetPlan(
        connector=connector,
        schema=schema,
        stream=stream,
        state_rows=[r.stream for r in rows],
        tables=counts,
    )


def apply_reset(
    plan: ResetPlan,
    *,
    cache_name: str = "default",
    cache_config: Mapping[str, Any] | None = None,
) -> ResetPlan:
    """Delete the plan's state rows and empty their tables, in one transaction.

    The rows are re-read (and locked) inside the transaction, so a sync that finished after
    the plan was made is reset too; what was done is returned as a plan. A table that is
    locked for longer than RESET_LOCK_TIMEOUT (a sync is loading it) fails the reset, and
    nothing changes.
    """
    kwargs, schema = _cache_target(cache_name, cache_config)
    if schema != plan.schema:
        raise ConnectorStateError(f"the plan is for schema {plan.schema}, the cache is {schema}")
    conn = _connect(kwargs, f"reset {plan.connector}")
    try:
        with conn.cursor() as cur:
            cur.execute("set local lock_timeout = %s", (RESET_LOCK_TIMEOUT,))
            known = [plan.stream] if plan.stream else []
            rows, tables = _plan(cur, schema, plan.connector, plan.stream, known, lock=True)
            present = {t: _table_facts(cur, schema, t)[0] for t in tables}
            for table, count in present.items():
                if count is not None:
                    cur.execute(sql.SQL("truncate table {}").format(sql.Identifier(schema, table)))
            if rows:
                cur.execute(
                    sql.SQL(
                        "delete from {} where source_name = %s and table_name = any(%s)"
                    ).format(sql.Identifier(schema, STATE_TABLE)),
                    (plan.connector, [r.table_name for r in rows]),
                )
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise ConnectorStateError(
            f"cannot reset {plan.connector} in schema {schema}; nothing was changed: "
            f"{type(exc).__name__}: {str(exc).strip()}"
            + (
                ". Fix: wait for the running sync to finish, then retry"
                if isinstance(exc, pg_errors.LockNotAvailable)
                else ""
            )
        ) from exc
    finally:
        conn.close()
    return ResetPlan(
        connector=plan.connector,
        schema=schema,
        stream=plan.stream,
        state_rows=[r.stream for r in rows],
        tables=present,
    )
