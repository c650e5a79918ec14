"""The SQL that takes each staged JSON line apart into typed columns, in the server.

Two forms of the INSERT ... SELECT from the stage table (`j` is the line as jsonb):

- the fast one casts each field (`(j ->> 'price')::numeric`): a value PostgreSQL cannot take
  (a date that is not a date, an integer past bigint) fails the whole file;
- the safe one, run for a file the fast one failed on when the connector YAML says
  `bad_data.invalid_values: nullify`, casts through `pg_temp.dp_try_<type>()` functions that
  return NULL instead of failing, and appends a change per nulled value to the row's
  `_airbyte_meta.changes`, in Airbyte's format:
  `{"field": "price", "change": "NULLED", "reason": "DESTINATION_TYPECAST_ERROR"}`.

The safe form costs a PL/pgSQL call (a subtransaction) per value, so it only runs on a file that
holds a bad value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from pyairbyte.utils.column_names import quote
from pyairbyte.utils.postgres_copy_cache.background_load import STAGE_TABLE
from pyairbyte.utils.postgres_copy_cache.table_plan import BIGINT, JSONB, TEXT, PlannedColumn

NULLED, DESTINATION_TYPECAST_ERROR = "NULLED", "DESTINATION_TYPECAST_ERROR"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def try_function(sql_type: str) -> str:
    return "pg_temp.dp_try_" + re.sub(r"[^a-z0-9]+", "_", sql_type.lower()).strip("_")


def try_functions_sql(types: Iterable[str]) -> list[str]:
    """CREATE statements for the `dp_try_<type>(text)` functions of `types` (temp, per session)."""
    statements = []
    for sql_type in sorted(set(types) - {TEXT}):
        if sql_type == BIGINT:  # 7.0 and 1e3 are integers; 1.5 is not
            body = "RETURN CASE WHEN v::numeric = trunc(v::numeric) THEN v::numeric::bigint END;"
        else:
            body = f"RETURN v::{sql_type};"
        statements.append(
            f"CREATE OR REPLACE FUNCTION {try_function(sql_type)}(v text) RETURNS {sql_type} "
            f"LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN {body} "
            "EXCEPTION WHEN others THEN RETURN NULL; END $f$"
        )
    return statements


def value_sql(key: str, sql_type: str) -> str:
    """The fast form: field `key` of `j` as `sql_type`; fails on a value that does not cast."""
    k = literal(key)
    if sql_type == JSONB:
        # `->` gives jsonb; a JSON null becomes SQL NULL like every other column's.
        return f"NULLIF(j -> {k}, 'null'::jsonb)"
    if sql_type == TEXT:
        # `->>` returns the string exactly as sent (a number as its JSON text).
        return f"(j ->> {k})"
    if sql_type == BIGINT:
        # A whole number written as 7.0 or 1e3 is still that integer; a fraction (1.5) goes
        # to the text cast, which fails naming the value instead of rounding it.
        number = f"(j -> {k})::numeric"
        return (
            f"CASE WHEN jsonb_typeof(j -> {k}) = 'number' AND {number} = trunc({number}) "
            f"THEN {number}::bigint ELSE (j ->> {k})::bigint END"
        )
    return f"(j ->> {k})::{sql_type}"


def safe_value_sql(key: str, sql_type: str) -> str:
    if sql_type in (TEXT, JSONB):
        return value_sql(key, sql_type)
    return f"{try_function(sql_type)}(j ->> {literal(key)})"


def present_sql(key: str) -> str:
    """The record has a non-null value for `key`."""
    return f"(j -> {literal(key)}) <> 'null'::jsonb"


def _meta_sql(changed: list[tuple[str, str]]) -> str:
    """`_airbyte_meta` with a change appended for each (condition, field) that holds."""
    meta = "COALESCE(j -> '_airbyte_meta', '{}'::jsonb)"
    if not changed:
        return "NULLIF(j -> '_airbyte_meta', 'null'::jsonb)"
    additions = " || ".join(
        f"CASE WHEN {condition} THEN "
        + literal(json.dumps([{"field": field, "change": NULLED, "reason": reason}]))
        + "::jsonb ELSE '[]'::jsonb END"
        for condition, field, reason in changed
    )
    any_change = " OR ".join(f"COALESCE({condition}, false)" for condition, _, _ in changed)
    return (
        f"CASE WHEN {any_change} THEN {meta} || jsonb_build_object('changes', "
        f"COALESCE({meta} -> 'changes', '[]'::jsonb) || {additions}) "
        "ELSE NULLIF(j -> '_airbyte_meta', 'null'::jsonb) END"
    )


def insert_sql(table: str, columns: list[PlannedColumn], *, safe: bool) -> str:
    """INSERT ... SELECT of the stage table into `table` (a fully qualified name)."""
    select, changed = [], []
    for column in columns:
        key = column.name  # staged lines are keyed by column name
        if column.name == "_airbyte_meta":
            select.append(None)  # filled in below, once every change is known
        elif column.prop is None and not column.name.startswith("_airbyte_"):
            select.append("NULL")  # a column no property fills this sync
        elif column.discard:
            select.append("NULL")
            changed.append((present_sql(key), column.prop, DESTINATION_TYPECAST_ERROR))
        elif safe and column.prop is not None and column.sql_type not in (TEXT, JSONB):
            expression = safe_value_sql(key, column.sql_type)
            select.append(expression)
            changed.append(
                (
                    f"{present_sql(key)} AND {expression} IS NULL",
                    column.prop,
                    DESTINATION_TYPECAST_ERROR,
                )
            )
        else:
            select.append(value_sql(key, column.sql_type))
    meta = _meta_sql(changed)
    select = [meta if expression is None else expression for expression in select]
    return (
        f"INSERT INTO {table} ("
        + ", ".join(quote(c.name) for c in columns)
        + ")\nSELECT "
        + ",\n  ".join(select)
        # OFFSET 0 keeps the subquery from being flattened: without it the line is parsed
        # to jsonb once per column instead of once per row (10x slower).
        + f"\nFROM (SELECT line::jsonb AS j FROM {STAGE_TABLE} OFFSET 0) AS staged"
    )
