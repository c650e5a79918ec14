"""Distinct, stable column names for a stream's properties, kept in a per-table map.

PyAirbyte names a column by lowercasing the property and turning every other character into
`_`, so `a-b` and `a_b`, or `Email` and `email`, become one column and one of the two values is
lost. A property the source calls `_airbyte_raw_id` would overwrite the generated id, and two
names that only differ past PostgreSQL's 63 bytes would meet in one truncated column.

Here every property gets its own column:
- the normal name when it is free (lowercase, `_` for other characters, `_` before a leading
  digit, at most 63 bytes);
- otherwise that name with a numeric suffix, `a_b_2`, `a_b_3`, ... The property whose own name
  *is* the normal name keeps it (`a_b` keeps `a_b`; `a-b` gets `a_b_2`), and `_airbyte_*`
  names from the source are never given a platform column's name (`_airbyte_raw_id_2`).

The names are stored with the cache's state, in `<schema>._dataplatform_column_map`, so that the
next sync and the dbt codegen use the same ones whatever order the properties arrive in. A row
per (table, property, SQL type): a property whose declared type changed and could not be widened
gets a typed sibling column (`price_jsonb`), a second row; the newest row is the current column.

This module is pure (no database driver, no airbyte import): the SQL is run by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

PG_MAX_IDENTIFIER_BYTES = 63
MAP_TABLE = "_dataplatform_column_map"
# The columns every cache table has; a source property never gets one of these names.
PLATFORM_COLUMNS = ("_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta")

CREATE_MAP_SQL = """
CREATE TABLE IF NOT EXISTS {schema}.{map_table} (
    table_name text NOT NULL,
    property text NOT NULL,
    sql_type text NOT NULL,
    column_name text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (table_name, property, sql_type)
)
"""
ROWS_SQL = """
SELECT property, sql_type, column_name FROM {schema}.{map_table}
WHERE table_name = %(table)s ORDER BY added_at, column_name
"""
INSERT_MAP_SQL = """
INSERT INTO {schema}.{map_table} (table_name, property, sql_type, column_name)
VALUES (%(table)s, %(property)s, %(sql_type)s, %(column)s)
ON CONFLICT (table_name, property, sql_type)
DO UPDATE SET column_name = EXCLUDED.column_name, added_at = clock_timestamp()
"""


def normalize(name: str) -> str:
    """The plain column name of a property (PyAirbyte 0.71's rule, cut to 63 bytes)."""
    result = re.sub(r"[^A-Za-z0-9]", "_", name.lower())
    if result and result[0].isdigit():
        result = f"_{result}"
    return truncate(result or "_")


def truncate(name: str, limit: int = PG_MAX_IDENTIFIER_BYTES) -> str:
    """`name` cut to `limit` bytes of UTF-8 (PostgreSQL cuts identifiers by bytes, silently)."""
    encoded = name.encode()
    if len(encoded) <= limit:
        return name
    return encoded[:limit].decode(errors="ignore")


def with_suffix(name: str, n: int) -> str:
    suffix = f"_{n}"
    return truncate(name, PG_MAX_IDENTIFIER_BYTES - len(suffix)) + suffix


def free_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or the first `wanted_N` (N >= 2) not in `taken`; added to `taken`."""
    name, n = wanted, 2
    while name in taken:
        name, n = with_suffix(wanted, n), n + 1
    taken.add(name)
    return name


def assign_columns(
    properties: Iterable[str],
    existing: Mapping[str, str] | None = None,
    taken: Iterable[str] = (),
) -> dict[str, str]:
    """property -> column for every property: the stored name when there is one, else a new
    distinct name (see the module doc). `taken`: names already used in the table (by columns
    of properties no longer declared, or typed siblings), which a new property must not get."""
    existing = dict(existing or {})
    used = set(PLATFORM_COLUMNS) | set(existing.values()) | set(taken)
    result = {prop: existing[prop] for prop in properties if prop in existing}
    new = [prop for prop in properties if prop not in existing]
    # A property already in normal form has the first claim on its name.
    for prop in sorted(new, key=lambda p: normalize(p) != p):
        result[prop] = free_name(normalize(prop), used)
    return result


def sibling_name(column: str, sql_type: str, taken: set[str]) -> str:
    """A typed sibling column for `column` (`price` -> `price_jsonb`), free in `taken`."""
    kind = re.sub(r"[^a-z0-9]+", "_", sql_type.lower()).strip("_") or "value"
    return free_name(truncate(f"{column}_{kind}"), taken)


def quote(identifier: str) -> str:
    """A PostgreSQL identifier, always quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def map_sql(template: str, schema: str) -> str:
    """One of the SQL templates above for the cache schema `schema` (DBAPI %(name)s params)."""
    return template.format(schema=quote(schema), map_table=quote(MAP_TABLE))


def read_column_rows(cursor, schema: str, table: str) -> list[tuple[str, str, str]]:
    """Every (property, SQL type, column) stored for `schema.table`, oldest first; [] if none.

    `cursor` is any DBAPI cursor (psycopg2 or psycopg 3)."""
    name = f"{quote(schema)}.{quote(MAP_TABLE)}"
    cursor.execute("SELECT to_regclass(%(name)s) IS NOT NULL", {"name": name})
    if not cursor.fetchone()[0]:
        return []
    cursor.execute(map_sql(ROWS_SQL, schema), {"table": table})
    return [tuple(row) for row in cursor.fetchall()]


def read_column_map(cursor, schema: str, table: str) -> dict[str, tuple[str, str]]:
    """property -> (current column, its SQL type) stored for `schema.table`; {} when none.
    The newest row of a property is its current column."""
    return {
        prop: (column, sql_type)
        for prop, sql_type, column in read_column_rows(cursor, schema, table)
    }
