"""dbt files from discovered stream schemas: sources YAML, staging SQL, reporting SQL.

What the cache does to a record (PyAirbyte 0.71, and the COPY cache alike), and so what the
generated staging model has to undo:
- column names are lowercased, non-alphanumerics become `_` (`discountPercentage` ->
  `discountpercentage`); the staging model selects those names and aliases them to snake_case;
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
from dataclasses import dataclass

from dataplatform.lifecycle.discovery import DiscoveredStream
from dataplatform.lifecycle.names import (
    PG_MAX_IDENTIFIER,
    cache_name,
    quote_ident,
    snake_case,
    sql_literal,
)
from pyairbyte.utils.connector_automation import FreshnessSettings

GENERATED_BY = "dataplatform connector add"

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


def staging_columns(stream: DiscoveredStream) -> list[StagingColumn]:
    """The staging select list: each property under its snake_case name, cast by its schema."""
    out: list[StagingColumn] = []
    taken: set[str] = set()

    def alias_for(wanted: str) -> str:
        alias, n = wanted or "column", 2
        while alias in taken:
            alias, n = f"{wanted}_{n}", n + 1
        taken.add(alias)
        return alias

    for prop_name, prop in stream.properties.items():
        column = quote_ident(cache_name(prop_name))
        kind = schema_kind(prop)
        base_alias = snake_case(prop_name)
        alias = alias_for(base_alias)
        comment = prop_name if cache_name(prop_name) != prop_name else ""
        if kind == "object":
            out.append(StagingColumn(f"{column}::jsonb", alias, comment))
            nested = prop.get("properties") if isinstance(prop, dict) else None
            for key, key_prop in (nested or {}).items():
                key_kind = schema_kind(key_prop)
                if key_kind in ("object", "array"):
                    expression = f"({column}::jsonb -> {sql_literal(key)})"
                else:
                    expression = _cast(f"({column}::jsonb ->> {sql_literal(key)})", key_kind)
                out.append(
                    StagingColumn(
                        expression,
                        alias_for(f"{base_alias}_{snake_case(key)}"),
                        f"{prop_name}.{key}",
                    )
                )
        else:
            out.append(StagingColumn(_cast(column, kind), alias, comment))
    out.append(StagingColumn("_airbyte_extracted_at", alias_for("extracted_at")))
    out.append(StagingColumn("current_timestamp", alias_for("dbt_loaded_at")))
    return out


def plan_stream_models(
    stream: DiscoveredStream, staging_model: str, reporting_model: str
) -> StreamModels:
    table = cache_table_name(stream.name)
    if len(table.encode()) > PG_MAX_IDENTIFIER:
        raise ValueError(
            f"cache table name {table!r} is longer than PostgreSQL's {PG_MAX_IDENTIFIER} bytes"
        )
    return StreamModels(stream, table, staging_model, reporting_model, staging_columns(stream))


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
        "-- types.\n"
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


def _primary_key_columns(stream: DiscoveredStream) -> tuple[list[str], str]:
    """(cache columns of a flat primary key, note when some part cannot be tested)."""
    if not stream.primary_key:
        return [], "the source declares no primary key"
    if any(len(path) != 1 for path in stream.primary_key):
        return [], "the primary key points into nested fields; add tests by hand"
    return [cache_name(path[0]) for path in stream.primary_key], ""


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
        key_columns, note = _primary_key_columns(stream)
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
