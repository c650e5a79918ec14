"""JSON schema -> PostgreSQL column types that keep values exact.

Differences from PyAirbyte's stock `SQLTypeConverter`:

| JSON schema                       | stock               | here        | why                |
|-----------------------------------|---------------------|-------------|--------------------|
| number                            | numeric(38,9)       | numeric     | no rounding        |
| string, format date-time (any tz) | timestamp (tz lost) | timestamptz | keeps the instant  |
| string, format time + offset      | time                | timetz      | keeps the offset   |
| object, array                     | json                | jsonb       | queryable          |
| vector_array                      | float[]             | jsonb       | loaded from JSON   |
| `_airbyte_meta`                   | json                | jsonb       |                    |

All date-time fields become timestamptz, including ones declared `timestamp_without_timezone`:
values without an offset are read as UTC (the load session runs with TimeZone=UTC), values with
an offset keep their instant. A plain `timestamp` column would silently drop any offset.
"""

from __future__ import annotations

import sqlalchemy
from airbyte.types import SQLTypeConverter
from sqlalchemy.dialects import postgresql

LOSSLESS_CONVERSION_MAP: dict[str, sqlalchemy.types.TypeEngine] = {
    "string": sqlalchemy.types.VARCHAR(),
    "integer": sqlalchemy.types.BIGINT(),
    "number": sqlalchemy.types.NUMERIC(),
    "boolean": sqlalchemy.types.BOOLEAN(),
    "date": sqlalchemy.types.DATE(),
    "timestamp_with_timezone": postgresql.TIMESTAMP(timezone=True),
    "timestamp_without_timezone": postgresql.TIMESTAMP(timezone=True),
    "time_with_timezone": postgresql.TIME(timezone=True),
    "time_without_timezone": postgresql.TIME(timezone=False),
    "object": postgresql.JSONB(),
    "array": postgresql.JSONB(),
    "vector_array": postgresql.JSONB(),
}

_PG_DIALECT = postgresql.dialect()


def pg_type_sql(sql_type: sqlalchemy.types.TypeEngine) -> str:
    """Render a type as PostgreSQL DDL.

    `str(type)` uses SQLAlchemy's generic dialect, which prints `TIMESTAMP(timezone=True)` as plain
    `TIMESTAMP` -- that is how the stock cache loses time zones. Compiling for PostgreSQL prints
    `TIMESTAMP WITH TIME ZONE`.
    """
    return sql_type.compile(dialect=_PG_DIALECT)


class LosslessPostgresTypeConverter(SQLTypeConverter):
    """Maps JSON schema properties to the exact PostgreSQL types in `LOSSLESS_CONVERSION_MAP`."""

    def __init__(self, conversion_map: dict | None = None) -> None:
        super().__init__(conversion_map or LOSSLESS_CONVERSION_MAP)

    @classmethod
    def get_json_type(cls) -> sqlalchemy.types.TypeEngine:
        return postgresql.JSONB()

    def to_sql_type(self, json_schema_property_def: dict) -> sqlalchemy.types.TypeEngine:
        sql_type = super().to_sql_type(json_schema_property_def)
        # The base class returns generic JSON / ARRAY from code paths outside the conversion map
        # (vector arrays, unparseable array/object definitions): store those as jsonb too.
        if isinstance(sql_type, sqlalchemy.types.JSON | sqlalchemy.types.ARRAY):
            return postgresql.JSONB()
        return sql_type


def canonical_type(sql_type: sqlalchemy.types.TypeEngine) -> str:
    """A type as PostgreSQL's format_type() spells it (`character varying`, `bigint`, `jsonb`,
    `timestamp with time zone`), so declared and existing column types compare as text."""
    compiled = pg_type_sql(sql_type).lower()
    return {"varchar": "character varying"}.get(compiled, compiled)
