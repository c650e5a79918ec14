"""dbt files from discovered stream schemas: sources YAML, staging SQL, reporting SQL.

What the cache does to a record (PyAirbyte 0.71, and the COPY cache alike), and so what the
generated staging model has to undo:
- column names are lowercased, non-alphanumerics become `_` (`discountPercentage` ->
  `discountpercentage`), and every property gets a column of its own (`a-b` beside `a_b` ->
  `a_b_2`, a source's `_airbyte_raw_id` -> `_airbyte_raw_id_2`; `pyairbyte.utils.column_names`);
  the staging model selects those names and aliases them to snake_case. When the cache table
  already has a stored column map (`_dataplatform_column_map`), its current column per property
  is selected (a typed sibling such as `price_jsonb` under the property's alias), and so is every
  other column a sync added; otherwise the names a fresh table gets (`assign_columns`);
- nested objects and arrays are stored as json (or jsonb); keys inside keep their case, so
  top-level keys of an object are read with `(col::jsonb ->> 'createdAt')`; `::jsonb` works for
  json, jsonb and text columns alike;
- the project's cache (CopyPostgresCache) stores date-times as timestamptz (a value without an
  offset is read as UTC) and numbers as numeric; every column is still cast to the type its JSON
  schema says (timestamptz, date, bigint, numeric, boolean, jsonb), so a model also works on a
  table the stock cache made. A `timestamp_without_timezone` field becomes wall-clock time with
  `AT TIME ZONE 'UTC'`, never `::timestamp`, which would shift by the session's time zone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dataplatform.lifecycle.cache_tables import CacheTable
from dataplatform.lifecycle.discovery import DiscoveredStream
from dataplatform.lifecycle.names import (
    PG_MAX_IDENTIFIER,
    cache_name,
    cache_name_length,
    quote_ident,
    snake_case,
    sql_literal,
)
from pyairbyte.utils import column_names
from pyairbyte.utils.connector_automation import FreshnessSettings

GENERATED_BY = "dataplatform connector add"
REFRESH_COMMAND = "dataplatform connector refresh-staging"

# JSON-schema kind -> cast applied in staging (None: keep the cache's type)
_CASTS = {
    "integer": "bigint",
    "number": "numeric",
    "boolean": "boolean",
    "date": "date",
    "timestamptz": "timestamptz",
    "object": "jsonb",
    "array": "jsonb",
    "string": None,
    "time": None,
    "unknown": None,
}


def schema_kind(prop: object) -> str:
    """The kind of one JSON-schema property, decided the way PyAirbyte types its column."""
    if not isinstance(prop, dict):
        return "unknown"
    airbyte_type = prop.get("airbyte_type")
    if airbyte_type == "timestamp_with_timezone":
        return "timestamptz"
    if airbyte_type == "timestamp_without_timezone":
        return "timestamp"
    if airbyte_type in ("integer", "number", "boolean", "date", "string"):
        return airbyte_type
    declared = prop.get("type")
    if isinstance(declared, list):
        non_null = [t for t in declared if t != "null"]
        declared = non_null[0] if len(non_null) == 1 else None
    fmt = prop.get("format")
    if declared == "string":
        return {"date-time": "timestamptz", "date": "date", "time": "time"}.get(fmt, "string")
    if declared in ("integer", "number", "boolean", "object", "array"):
        return declared
    return "unknown"


@dataclass(frozen=True)
class StagingColumn:
    expression: str  # SQL over the cache table's columns
    alias: str
    comment: str = ""


@dataclass(frozen=True)
class StreamModels:
    """Everything generated for one stream."""

    stream: DiscoveredStream
    table: str  # cache table: the stream's name as the cache normalises it
    staging_model: str
    reporting_model: str
    columns: list[StagingColumn]
    # property -> the cache column that holds it (primary-key tests name these)
    property_columns: dict[str, str] = field(default_factory=dict)
    # declared properties the existing cache table has no column for yet (not selected)
    pending: list[str] = field(default_factory=list)


_JINJA_OPEN = re.compile(r"\{[{%#]")


def jinja_string(text: str) -> str:
    """A Jinja string literal (for source('...') arguments)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_comment(text: str) -> str:
    """Text safe inside a `--` comment: one line, no Jinja delimiters."""
    return _JINJA_OPEN.sub("{ ", " ".join(text.split()))


def cache_table_name(stream: str) -> str:
    """Every connector location writes pyairbyte_cache.<stream>, unprefixed: one rule for the
    sample locations and generated ones. `connector add` refuses a stream whose table another
    dbt source already reads, so each table still has one owner."""
    return cache_name(stream)


def _cast(expression: str, kind: str) -> str:
    if kind == "timestamp":
        return f"({expression})::timestamptz at time zone 'UTC'"
    cast = _CASTS.get(kind)
    return f"{expression}::{cast}" if cast else expression


ColumnMap = Mapping[str, "str | tuple[str, str]"]


def property_columns(
    properties: Iterable[str], column_map: ColumnMap | None = None, taken: Iterable[str] = ()
) -> dict[str, str]:
    """property -> the cache column that holds it: the stored map's current column when there
    is one, else the name the cache gives a new property (`column_names.assign_columns`, never
    a name the map already uses), exactly as the cache's table plan decides it.

    `column_map`: property -> column, or -> (column, SQL type) as `read_column_map` returns it.
    """
    current = {p: (v[0] if isinstance(v, tuple) else v) for p, v in (column_map or {}).items()}
    declared = list(properties)
    existing = {p: c for p, c in current.items() if p in declared}
    return column_names.assign_columns(declared, existing, set(taken) | set(current.values()))


def _aliases():
    taken: set[str] = set()

    def alias_for(wanted: str) -> str:
        alias, n = wanted or "column", 2
        while alias in taken:
            alias, n = f"{wanted}_{n}", n + 1
        taken.add(alias)
        return alias

    return alias_for


def staging_columns(
    stream: DiscoveredStream,
    column_map: ColumnMap | None = None,
    cache_table: CacheTable | None = None,
) -> list[StagingColumn]:
    """The staging select list: each property under its snake_case name, cast by its schema.

    Each property's column is the cache's: `column_map`'s current column (property -> column,
    or `read_column_map`'s property -> (column, type)), else what `assign_columns` gives a new
    table. With `cache_table` (the table as it exists, map included): its map is used when no
    `column_map` is passed, a property the table has no column for yet is left out (see
    `pending_properties`), and every other column of the table (an undeclared property a sync
    stored as jsonb, a column no property maps to) is selected too, after the properties.
    """
    props = stream.properties
    if column_map is None and cache_table is not None:
        column_map = cache_table.current
    taken = cache_table.mapped_columns if cache_table is not None else ()
    columns = property_columns(props, column_map, taken)
    exists = cache_table is not None and cache_table.exists
    out: list[StagingColumn] = []
    alias_for = _aliases()

    for prop_name, prop in props.items():
        # Aliases are given to every declared property, selected or not, so that a property
        # whose column a later sync adds does not shift the aliases of the others.
        selected: list[StagingColumn] = []
        column = quote_ident(columns[prop_name])
        kind = schema_kind(prop)
        base_alias = snake_case(prop_name)
        alias = alias_for(base_alias)
        comment = prop_name if columns[prop_name] != prop_name else ""
        if kind == "object":
            selected.append(StagingColumn(f"{column}::jsonb", alias, comment))
            nested = prop.get("properties") if isinstance(prop, dict) else None
            for key, key_prop in (nested or {}).items():
                key_kind = schema_kind(key_prop)
                if key_kind in ("object", "array"):
                    expression = f"({column}::jsonb -> {sql_literal(key)})"
                else:
                    expression = _cast(f"({column}::jsonb ->> {sql_literal(key)})", key_kind)
                selected.append(
                    StagingColumn(
                        expression,
                        alias_for(f"{base_alias}_{snake_case(key)}"),
                        f"{prop_name}.{key}",
                    )
                )
        else:
            selected.append(StagingColumn(_cast(column, kind), alias, comment))
        if not exists or columns[prop_name] in cache_table.columns:
            out += selected  # else no column yet: a sync adds it, refresh-staging selects it
    if exists:
        held = set(columns.values())  # by declared properties (selected above, or pending)
        property_of = {column: prop for prop, column in cache_table.column_map.items()}
        for column in cache_table.data_columns():
            if column in held:
                continue
            prop = property_of.get(column)
            if prop is not None:
                note = f"{prop}: not in the stream's schema; the cache keeps it as {column}"
                out.append(StagingColumn(quote_ident(column), alias_for(snake_case(prop)), note))
            else:
                note = f"cache column {column}: no property of the stream maps to it"
                out.append(StagingColumn(quote_ident(column), alias_for(snake_case(column)), note))
    out.append(StagingColumn("_airbyte_extracted_at", alias_for("extracted_at")))
    out.append(StagingColumn("current_timestamp", alias_for("dbt_loaded_at")))
    return out


def pending_properties(stream: DiscoveredStream, cache_table: CacheTable | None) -> list[str]:
    """Declared properties that the existing cache table has no column for yet."""
    if cache_table is None or not cache_table.exists:
        return []
    columns = property_columns(stream.properties, cache_table.current, cache_table.mapped_columns)
    return [p for p, c in columns.items() if c not in cache_table.columns]


def plan_stream_models(
    stream: DiscoveredStream,
    staging_model: str,
    reporting_model: str,
    cache_table: CacheTable | None = None,
) -> StreamModels:
    """The models of one stream; with `cache_table`, over that table as it exists (its column
    map and columns), else over the table the cache will create."""
    table = cache_table_name(stream.name)
    length = cache_name_length(stream.name)
    if length > PG_MAX_IDENTIFIER:
        raise ValueError(
            f"cache table name of stream {stream.name[:40]!r} would be {length} bytes, longer "
            f"than PostgreSQL's {PG_MAX_IDENTIFIER} bytes"
        )
    taken = cache_table.mapped_columns if cache_table is not None else ()
    current = cache_table.current if cache_table is not None else None
    return StreamModels(
        stream,
        table,
        staging_model,
        reporting_model,
        staging_columns(stream, cache_table=cache_table),
        property_columns(stream.properties, current, taken),
        pending_properties(stream, cache_table),
    )


def render_staging_sql(location: str, source_name: str, models: StreamModels) -> str:
    width = max(len(c.expression) for c in models.columns)
    lines = []
    for i, col in enumerate(models.columns):
        comma = "," if i < len(models.columns) - 1 else ""
        text = f"    {col.expression.ljust(width)} as {quote_ident(col.alias)}{comma}"
        if col.comment:
            text += f"  -- {sql_comment(col.comment)}"
        lines.append(text.rstrip())
    select = "\n".join(lines)
    if _JINJA_OPEN.search(select):  # a JSON key like "{{x}}" must reach PostgreSQL as written
        select = "{% raw %}\n" + select + "\n{% endraw %}"
    stream = models.stream.name
    return (
        f"-- Stream `{sql_comment(stream)}` of code location {location}, generated by "
        f"`{GENERATED_BY}`\n"
        "-- from the discovered JSON schema. Cache columns are lowercased (customerName ->\n"
        "-- customername) and aliased to snake_case; nested objects are json(b) with their keys\n"
        "-- in original case, read with `::jsonb ->> 'key'`; columns are cast to their schema's\n"
        "-- types. After a sync changed the cache table's columns, regenerate this file with\n"
        f"-- `{REFRESH_COMMAND} {location}`.\n"
        "with source as (\n"
        f"    select * from {{{{ source({jinja_string(source_name)}, {jinja_string(stream)}) }}}}\n"
        ")\n"
        "\n"
        "select\n" + select + "\nfrom source\n"
    )


def render_reporting_sql(location: str, models: StreamModels) -> str:
    aliases = [c.alias for c in models.columns if c.alias != "dbt_loaded_at"]
    select = ",\n".join(f"    {quote_ident(a)}" for a in aliases)
    return (
        f"-- Report on stream `{sql_comment(models.stream.name)}` (code location {location}): a "
        "starting point\n"
        f"-- generated by `{GENERATED_BY}`, one row per staged record. Add the report's logic.\n"
        f"select\n{select}\nfrom {{{{ ref('{models.staging_model}') }}}}\n"
    )


def _primary_key_columns(models: StreamModels) -> tuple[list[str], str]:
    """(cache columns of a flat primary key, note when some part cannot be tested)."""
    stream = models.stream
    if not stream.primary_key:
        return [], "the source declares no primary key"
    if any(len(path) != 1 for path in stream.primary_key):
        return [], "the primary key points into nested fields; add tests by hand"
    columns = models.property_columns or property_columns(stream.properties)
    return [columns.get(path[0]) or cache_name(path[0]) for path in stream.primary_key], ""


def render_sources_yaml(
    location: str,
    connector_name: str,
    source_name: str,
    cache_schema: str,
    sync_asset: str,
    streams: list[StreamModels],
    freshness: FreshnessSettings | None = None,
) -> str:
    """The sources YAML; with the connector YAML's `freshness:`, every table gets dbt source
    freshness on `_airbyte_extracted_at`, the time PyAirbyte extracted each row."""
    q = json.dumps  # JSON strings are valid YAML scalars, whatever they contain
    out = [
        f"# dbt sources of code location {location}: the PyAirbyte cache tables of",
        f"# {connector_name}, generated by `{GENERATED_BY}`.",
        "version: 2",
        "",
        "sources:",
        f"  - name: {source_name}",
        f"    description: {q(f'Streams of {connector_name}, synced by PyAirbyte ({location})')}",
        f"    schema: {cache_schema}  # the PyAirbyte cache schema, not the source name",
    ]
    if freshness is not None:
        out += [
            f"    # From `freshness: max_lag` in {connector_name}'s connector YAML: `dbt source "
            "freshness`",
            f"    # fails a table whose newest row was extracted more than {freshness.count} "
            f"{freshness.period}{'s' if freshness.count != 1 else ''} ago.",
            "    config:",
            "      loaded_at_field: _airbyte_extracted_at",
            "      freshness:",
            f"        error_after: {{count: {freshness.count}, period: {freshness.period}}}",
        ]
    out.append("    tables:")
    for models in streams:
        stream = models.stream
        key_columns, note = _primary_key_columns(models)
        out += [
            f"      - name: {q(stream.name)}",
            f"        identifier: {models.table}  # the cache table (the normalised stream name)",
            f"        description: {q(f'Raw {stream.name} records; column names lowercased')}",
            "        meta:",
            "          dagster:",
            f"            # The cache table's asset, materialized by {sync_asset} ({location}).",
            f"            asset_key: [{q(cache_schema)}, {q(models.table)}]",
        ]
        if note:
            out.append(f"        # No key tests: {note}.")
            continue
        out.append("        columns:")
        for column in key_columns:
            out += [
                f"          - name: {column}",
                "            description: Primary key",
                "            data_tests:",
                "              - not_null",
            ]
            if len(key_columns) == 1:
                out.append("              - unique")
        if len(key_columns) > 1:
            out.append("        # Composite primary key: each part is not null; unique as a whole.")
    return "\n".join(out) + "\n"
