"""Turn a failed load into a short error that names the stream, the record, the field and the fix.

A database error is never passed on with the statement that failed: a stream's INSERT or
CREATE TABLE can be tens of thousands of characters, and it would bury the reason.
"""

from __future__ import annotations

from typing import Any

import psycopg2

from pyairbyte.errors import CacheLoadError
from pyairbyte.utils.postgres_copy_cache import load_sql
from pyairbyte.utils.postgres_copy_cache.background_load import STAGE_TABLE
from pyairbyte.utils.postgres_copy_cache.table_plan import JSONB, TEXT, PlannedColumn

# SQLSTATE of "unsupported Unicode escape sequence" (\u0000 in a JSON string).
_UNTRANSLATABLE_CHARACTER = "22P05"
# PostgreSQL's own limits, by SQLSTATE: said as such, never as a lost connection.
PG_LIMITS = {
    "54011": "PostgreSQL allows at most 1,600 columns in a table",
    "54000": "a value or row is past one of PostgreSQL's size limits (1 GB per value)",
    "54001": "the statement is too complex for PostgreSQL (nesting too deep)",
    "42622": "a name is longer than PostgreSQL's 63 bytes",
}

__all__ = ["CacheLoadError", "explain_load_error", "short_db_error"]


def display_type(sql_type: str) -> str:
    """A column type as messages show it (`VARCHAR`, `BIGINT`, `TIMESTAMP WITH TIME ZONE`)."""
    return {"character varying": "VARCHAR"}.get(sql_type, sql_type.upper())


def short_db_error(error: BaseException) -> str:
    """The database's own first line (plus the limit, if one was hit), without the statement."""
    original = getattr(error, "orig", None) or error
    text = (getattr(original, "pgerror", None) or str(original)).strip()
    first = text.splitlines()[0].removeprefix("ERROR:  ") if text else type(error).__name__
    limit = PG_LIMITS.get(getattr(original, "pgcode", None) or "")
    return f"{first[:300]} ({limit})" if limit else first[:300]


def explain_load_error(
    cursor: psycopg2.extensions.cursor,
    error: psycopg2.Error,
    *,
    schema_name: str,
    stream_name: str,
    columns: list[PlannedColumn],
    primary_keys: list[str],
) -> CacheLoadError:
    """Find the field and the record whose value PostgreSQL rejected, for an error the user can
    act on. Runs only after a failed load, on the loader's thread and connection, with the failed
    file still in the stage table."""
    reason = short_db_error(error)
    culprit = _first_rejected(cursor, columns, primary_keys)
    where = "a staged record"
    if culprit is not None:
        column, record_key = culprit
        where = (
            f"record {record_key}, field '{column.prop or column.name}' "
            f'(column "{column.name}", {display_type(column.sql_type)})'
        )
    return CacheLoadError(
        f"Cannot load stream '{stream_name}' into PostgreSQL schema '{schema_name}': "
        f"{where}: {reason}. Nothing was written for this stream and its table is unchanged. "
        "Fix: correct the value at the source, or set bad_data.invalid_values: nullify in the "
        "connector YAML to store NULL and record the change in _airbyte_meta.changes."
    )


def _first_rejected(
    cursor: Any, columns: list[PlannedColumn], primary_keys: list[str]
) -> tuple[PlannedColumn, str] | None:
    """(the column, the record's key) of the first value that does not cast."""
    candidates = [
        c
        for c in columns
        if c.prop is not None and not c.discard and c.sql_type not in (TEXT, JSONB)
    ]
    if not candidates:
        return None
    cursor.execute("SAVEPOINT probe_values")
    try:
        for statement in load_sql.try_functions_sql(c.sql_type for c in candidates):
            cursor.execute(statement)
        key_sql = (
            "concat_ws(', ', "
            + ", ".join(
                f"{load_sql.literal(k + '=')} || COALESCE(j ->> {load_sql.literal(k)}, 'null')"
                for k in primary_keys
            )
            + ")"
            if primary_keys
            else "'(no primary key)'"
        )
        for column in candidates:
            cursor.execute(
                f"SELECT {key_sql} FROM (SELECT line::jsonb AS j FROM {STAGE_TABLE}) s "
                f"WHERE {load_sql.present_sql(column.name)} AND "
                f"{load_sql.safe_value_sql(column.name, column.sql_type)} IS NULL LIMIT 1"
            )
            row = cursor.fetchone()
            if row is not None:
                return column, row[0]
    except psycopg2.Error:
        return None
    finally:
        cursor.execute("ROLLBACK TO SAVEPOINT probe_values")
    return None
