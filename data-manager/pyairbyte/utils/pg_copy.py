"""Shared PostgreSQL plumbing for the table-copy utils (mysql_sync, mssql_sync, db_bridge).

Column types passed to `replace_table` are SQL type names produced by the callers' own type
mappings (never user input); identifiers are always quoted with `psycopg.sql.Identifier`.

Why psycopg 3: its `cursor.copy()` with `write_row` formats and escapes the values in C. For
200k rows (bench/pg_copy.py) that took about 0.8x the time of building COPY text in Python for
psycopg2's `copy_expert` (0.77 s against 0.95 s); the same bytes through either driver's COPY
cost the same, so the gain is the formatting. Converters therefore return Python values (None
for NULL), not COPY text. Other utils (event_store, cache_db_manager) stay on psycopg2.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from pyairbyte import settings
from pyairbyte.errors import DatabaseSyncError, TableReplaceError, UnsupportedTypeError

__all__ = ["UnsupportedTypeError"]  # re-exported: the syncs and their tests import it from here

# PostgreSQL silently truncates longer identifiers, which could make two tables collide.
PG_MAX_IDENTIFIER_BYTES = 63


NULL = None  # what a converter returns for SQL NULL


@dataclass(frozen=True)
class PgColumn:
    name: str
    pg_type: str  # SQL type text from a caller's type mapping, e.g. "numeric(20,6)"


@dataclass(frozen=True)
class ColumnPlan:
    """How one source column is read (select_sql) and written (pg_type, converter)."""

    name: str
    pg_type: str
    select_sql: str  # expression in the source database's SELECT list
    converter: Callable[[object], object]


def raw_value(value):
    """For source values psycopg writes as they are: text that is already valid PostgreSQL input
    (numbers, ISO dates), None, or Python numbers, dates, UUIDs and bytes."""
    return value


_AS_IS = (str, bool, int, float, Decimal, dt.datetime, dt.date, dt.time, dt.timedelta, uuid.UUID)


def format_copy_value(value):
    """One Python value as psycopg writes it to COPY: None is NULL, bytes become bytea, objects
    and lists JSON text; psycopg escapes text itself."""
    if value is None or isinstance(value, _AS_IS):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot COPY a value of type {type(value).__name__}: {value!r:.80}")


Converter = Callable[[object], object]


def connect_postgres() -> psycopg.Connection:
    return psycopg.connect(**settings.postgres_settings().psycopg2_kwargs())


def check_identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise ValueError(f"{what} {name!r} contains a NUL character, which PostgreSQL rejects")
    if len(name.encode()) > PG_MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"{what} {name!r} is longer than PostgreSQL's {PG_MAX_IDENTIFIER_BYTES}-byte "
            "identifier limit; choose a shorter name (e.g. a shorter table_prefix)"
        )
    return name


def lock_key(*parts: str) -> int:
    # A stable signed 32-bit key for pg_advisory_xact_lock, derived from the names involved.
    return zlib.crc32("\x1f".join(parts).encode()) - 2**31


def ensure_schema(conn, schema: str) -> None:
    """Create `schema` if missing, in its own short transaction.

    CREATE SCHEMA IF NOT EXISTS can still fail with a unique violation when two sessions run it
    at the same moment, so creators serialise on an advisory lock first.
    """
    check_identifier(schema, "schema name")
    quoted = '"' + schema.replace('"', '""') + '"'  # plain SQL text, so either driver runs it
    with conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(%s)", (lock_key("schema", schema),))
        cur.execute(f"create schema if not exists {quoted}")
    conn.commit()


def replace_table(
    conn,
    schema: str,
    table: str,
    columns: Sequence[PgColumn],
    row_batches: Iterable[Sequence[Sequence]],
    converters: Sequence[Converter | None] | None = None,
    primary_key: Sequence[str] = (),
) -> int:
    """Atomically replace schema.table with the rows from `row_batches`; returns the row count.

    Everything (create staging, COPY every batch, swap) is one transaction: on any error it is
    rolled back and the previous table stays as it was. `converters` optionally gives a per-column
    function from a source value to the value psycopg writes (default: `format_copy_value`).
    `primary_key` (column names) is added after the load, which is faster than loading into an
    indexed table.

    If views depend on the existing table, it cannot be dropped; then, when the column list is
    unchanged, the table is emptied and refilled from staging in the same transaction instead.
    """
    check_identifier(schema, "schema name")
    check_identifier(table, "table name")
    if not columns:
        raise ValueError(f"table {table!r} has no columns to copy")
    for column in columns:
        check_identifier(column.name, f"column name in table {table!r}")
    converters = [c or format_copy_value for c in (converters or [None] * len(columns))]

    ensure_schema(conn, schema)
    staging = f"_dp_staging_{uuid.uuid4().hex[:12]}"
    staging_id = sql.Identifier(schema, staging)
    column_defs = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns
    )
    copy_sql = (
        sql.SQL("copy {} ({}) from stdin")
        .format(staging_id, sql.SQL(", ").join(sql.Identifier(c.name) for c in columns))
        .as_string(conn)
    )
    # Identity converters are skipped: the row goes to psycopg as the source gave it.
    identity = all(c is raw_value for c in converters)
    rows = 0
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("create table {} ({})").format(staging_id, column_defs))
            for batch in row_batches:
                if not batch:
                    continue
                with cur.copy(copy_sql) as copy:
                    for row in batch:
                        if identity:
                            copy.write_row(row)
                        else:
                            copy.write_row(
                                [conv(v) for conv, v in zip(converters, row, strict=True)]
                            )
                rows += len(batch)
            if primary_key:
                cur.execute(
                    sql.SQL("alter table {} add constraint {} primary key ({})").format(
                        staging_id,
                        sql.Identifier(f"{staging}_pkey"),
                        sql.SQL(", ").join(sql.Identifier(c) for c in primary_key),
                    )
                )
            # Two syncs of the same table serialise here, so the second swap sees the first.
            cur.execute("select pg_advisory_xact_lock(%s)", (lock_key("table", schema, table),))
            _swap_in(cur, schema, table, staging, columns)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return rows


def replace_planned_table(
    conn,
    schema: str,
    table: str,
    plans: Sequence[ColumnPlan],
    row_batches: Iterable[Sequence[Sequence]],
    primary_key: Sequence[str] = (),
) -> int:
    """`replace_table` with the column types and converters of a source's column plans."""
    columns = [PgColumn(p.name, p.pg_type) for p in plans]
    converters = [p.converter for p in plans]
    return replace_table(conn, schema, table, columns, row_batches, converters, primary_key)


def fetch_batches(cursor, size: int) -> Iterator[Sequence]:
    """A source cursor's result, `size` rows at a time."""
    while batch := cursor.fetchmany(size):
        yield batch


def _swap_in(cur, schema: str, table: str, staging: str, columns: Sequence[PgColumn]) -> None:
    target_id = sql.Identifier(schema, table)
    staging_id = sql.Identifier(schema, staging)
    cur.execute("savepoint dp_swap")
    try:
        cur.execute(sql.SQL("drop table if exists {}").format(target_id))
    except pg_errors.DependentObjectsStillExist as exc:
        cur.execute("rollback to savepoint dp_swap")
        _refill_in_place(cur, schema, table, staging, exc)
        return
    cur.execute(sql.SQL("alter table {} rename to {}").format(staging_id, sql.Identifier(table)))
    pkey = _primary_key_name(cur, schema, table)
    if pkey:  # constraint names are unique per schema; drop the staging name from it
        wanted = f"{table}_pkey".encode()[:PG_MAX_IDENTIFIER_BYTES].decode(errors="ignore")
        cur.execute(
            sql.SQL("alter table {} rename constraint {} to {}").format(
                target_id, sql.Identifier(pkey), sql.Identifier(wanted)
            )
        )


def _primary_key_name(cur, schema: str, table: str) -> str | None:
    cur.execute(
        "select conname from pg_constraint where conrelid = %s::regclass and contype = 'p'",
        (sql.Identifier(schema, table).as_string(cur),),
    )
    row = cur.fetchone()
    return row[0] if row else None


def _column_types(cur, schema: str, table: str) -> list[tuple]:
    cur.execute(
        """
        select a.attname, format_type(a.atttypid, a.atttypmod)
        from pg_attribute a
        where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
        order by a.attnum
        """,
        (sql.Identifier(schema, table).as_string(cur),),
    )
    return cur.fetchall()


def _refill_in_place(cur, schema: str, table: str, staging: str, exc) -> None:
    """Views depend on the table: keep it, and replace its rows (same transaction)."""
    if _column_types(cur, schema, table) != _column_types(cur, schema, staging):
        detail = (exc.diag.message_detail or "").replace("\n", "; ")
        raise TableReplaceError(
            f"cannot replace {schema}.{table}: its columns changed and other objects depend on "
            f"it ({detail}). Drop those views (dbt recreates them on its next run) and sync again."
        ) from exc
    target_id = sql.Identifier(schema, table)
    staging_id = sql.Identifier(schema, staging)
    cur.execute(sql.SQL("truncate {}").format(target_id))
    cur.execute(sql.SQL("insert into {} select * from {}").format(target_id, staging_id))
    cur.execute(sql.SQL("drop table {}").format(staging_id))


class TablesCopied(dict):
    """{table: rows copied}, that also answers the guide's keys: `result.get('status')` is
    'success' and `result['tables_synced']` the number of tables (a table of that name wins).
    A failure raises `DatabaseSyncError` instead, so a returned result is always a success."""

    _GUIDE_KEYS = ("status", "tables_synced")

    def _guide_value(self, key: str) -> object:
        return "success" if key == "status" else len(self)

    def __missing__(self, key: str) -> object:
        if key in self._GUIDE_KEYS:
            return self._guide_value(key)
        raise KeyError(key)

    def get(self, key: str, default: object = None) -> object:
        if key in self or key not in self._GUIDE_KEYS:
            return super().get(key, default)
        return self._guide_value(key)


def check_copy_request(
    caller: str, tables: Sequence[str], cache_schema: str, target: Callable[[str], str]
) -> None:
    """Refuse a bad `tables` list, cache schema or target table name (`target(table)`) up front."""
    if isinstance(tables, str) or not tables or not all(isinstance(t, str) and t for t in tables):
        raise ValueError(
            f"{caller}: tables must be a non-empty list of table names, got {tables!r}"
        )
    check_identifier(cache_schema, "cache_schema")
    for name in tables:
        check_identifier(target(name), "target table name")


def copy_tables(
    tables: Sequence[str],
    cache_schema: str,
    copy_one: Callable[[object, str], int],
    source: str,
) -> TablesCopied:
    """Run `copy_one(pg_conn, table) -> rows` for every table; returns {table: rows}
    (`TablesCopied`, which also has the guide's 'status' and 'tables_synced').

    One table failing does not stop the others; afterwards a `DatabaseSyncError` names each
    failed table ("*" when PostgreSQL is unreachable) and carries the rows of those copied.
    """
    rows: dict[str, int] = {}
    failed: dict[str, str] = {}
    try:
        pg = connect_postgres()
    except psycopg.Error as exc:
        failed["*"] = f"cannot connect to PostgreSQL: {exc}".strip()
    else:
        try:
            for table in tables:
                try:
                    rows[table] = copy_one(pg, table)
                except Exception as exc:  # any cause: collected per table, raised together below
                    failed[table] = f"{type(exc).__name__}: {exc}".strip()
        finally:
            pg.close()
    if failed:
        raise DatabaseSyncError(
            f"copying into schema {cache_schema} from {source}: "
            + "; ".join(f"{t}: {e}" for t, e in failed.items()),
            rows=rows,
            failed_tables=failed,
        )
    return TablesCopied(rows)
