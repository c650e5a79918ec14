"""Turn a failed load into an error that names the stream, the field and the fix."""

from __future__ import annotations

import json
from typing import Any

import psycopg2
import sqlalchemy

from pyairbyte.errors import CacheLoadError
from pyairbyte.utils.postgres_copy_cache.background_load import STAGE_TABLE
from pyairbyte.utils.postgres_copy_cache.types import pg_type_sql

# SQLSTATE of "unsupported Unicode escape sequence" (\u0000 in a JSON string).
_UNTRANSLATABLE_CHARACTER = "22P05"


__all__ = ["CacheLoadError", "explain_load_error"]


def explain_load_error(
    cursor: psycopg2.extensions.cursor,
    error: psycopg2.Error,
    *,
    schema_name: str,
    stream_name: str,
    columns: list[tuple[str, str, sqlalchemy.types.TypeEngine]],
) -> CacheLoadError:
    """Find the field whose values PostgreSQL rejected, for an error the user can act on.

    Runs only after a failed load, on the loader's thread and connection (so it must not hold
    the processor), with the failed file still in the stage table.
    """
    reason = (error.pgerror or str(error)).strip().splitlines()[0].removeprefix("ERROR:  ")
    key = (
        _key_holding_nul(cursor)
        if error.pgcode == _UNTRANSLATABLE_CHARACTER
        else _first_rejected_key(cursor, columns)
    )
    where = "a staged record"
    for column, column_key, sql_type in columns:
        if column_key == key:
            where = f"field '{key}' (column \"{column}\", {pg_type_sql(sql_type)})"
            if error.pgcode == _UNTRANSLATABLE_CHARACTER:
                reason = "a string contains U+0000, which PostgreSQL text and jsonb cannot store"
    return CacheLoadError(
        f"Cannot load stream '{stream_name}' into PostgreSQL schema '{schema_name}': "
        f"{where}: {reason}. Nothing was written for this stream and its table is unchanged. "
        f"Fix: correct the value at the source, or declare the field with a matching type in "
        f"the stream's JSON schema (e.g. a plain string)."
    )


def _first_rejected_key(cursor: Any, columns: list) -> str | None:
    """Cast each column on its own; the first one that fails is the culprit."""
    for _, key, sql_type in columns:
        if isinstance(sql_type, sqlalchemy.types.JSON | sqlalchemy.types.String):
            continue  # every JSON value is valid jsonb and has a text form
        quoted_key = "'" + key.replace("'", "''") + "'"
        cursor.execute("SAVEPOINT probe_column")
        try:
            cursor.execute(
                f"SELECT count((line::jsonb ->> {quoted_key})::{pg_type_sql(sql_type)}) "
                f"FROM {STAGE_TABLE}"
            )
            cursor.execute("RELEASE SAVEPOINT probe_column")
        except psycopg2.Error:
            cursor.execute("ROLLBACK TO SAVEPOINT probe_column")
            return key
    return None


def _key_holding_nul(cursor: Any) -> str | None:
    """The top-level key of the first staged record with a U+0000 anywhere in its value.

    PostgreSQL refuses the whole line (jsonb, and even json's `->>`), so look in Python.
    """

    def holds_nul(value: Any) -> bool:
        if isinstance(value, str):
            return "\x00" in value
        if isinstance(value, dict):
            return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
        if isinstance(value, list):
            return any(holds_nul(v) for v in value)
        return False

    cursor.execute(f"SELECT line FROM {STAGE_TABLE} WHERE strpos(line, '\\u0000') > 0")
    for (line,) in cursor:
        for key, value in json.loads(line).items():
            if holds_nul(key) or holds_nul(value):
                return key
    return None
