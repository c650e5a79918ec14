"""Legacy bridge: copy a table from a DuckDB cache file into PostgreSQL (the guide's Fix 1).

For users who still have PyAirbyte DuckDB caches. New pipelines write to the PostgreSQL cache
directly and do not need this.

    bridge = PyAirbyteDBBridge()
    copy_success = bridge.copy_duckdb_to_postgres(cache_path, "users", "pyairbyte_cache")

The DuckDB file is opened read-only (a missing file is an error, not a new empty database), the
table is read in batches and loaded with COPY, and the PostgreSQL table is replaced atomically
(`pg_copy.replace_table`). Returns True; failures raise `DBBridgeError` with the reason, and
`bridge.last_copy` holds {source, target, rows} of the last successful copy.

Type mapping (DuckDB -> PostgreSQL): BOOLEAN boolean; TINYINT, SMALLINT, UTINYINT smallint;
INTEGER, USMALLINT integer; BIGINT, UINTEGER bigint; UBIGINT numeric(20,0); HUGEINT, UHUGEINT
numeric(39,0); FLOAT real; DOUBLE double precision; DECIMAL(p,s) numeric(p,s); VARCHAR, ENUM
text; BLOB bytea; DATE date; TIME time; TIMESTAMP (any unit) timestamp; TIMESTAMP WITH TIME ZONE
timestamptz; INTERVAL interval; UUID uuid; JSON, lists, structs, maps, arrays jsonb.

Settings (`db_bridge_settings()`, read at each call):

| env var                  | default |
|--------------------------|---------|
| DB_BRIDGE_BATCH_SIZE     | 10000   |
| POSTGRES_*               | see pyairbyte.settings |
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from pydantic import Field

from pyairbyte import settings
from pyairbyte.errors import DBBridgeError
from pyairbyte.utils.pg_copy import (
    NULL,
    ColumnPlan,
    check_identifier,
    connect_postgres,
    fetch_batches,
    format_copy_value,
    replace_planned_table,
)


class DbBridgeSettings(settings.EnvSettings):
    batch_size: settings.PositiveInt = Field(10_000, validation_alias="DB_BRIDGE_BATCH_SIZE")


def db_bridge_settings() -> DbBridgeSettings:
    return settings.load(DbBridgeSettings)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


__all__ = ["DBBridgeError", "PyAirbyteDBBridge", "map_duckdb_column"]


def _duck_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duck_literal(value: str) -> str:
    # Bound parameters would be nicer, but make DuckDB's Python client import numpy/pandas
    # (seconds) on first use; a quoted literal is just as safe.
    return "'" + value.replace("'", "''") + "'"


def _epoch_us_to_utc(value) -> str:
    # TIMESTAMPTZ is read as epoch microseconds: exact, and needs no time zone support in DuckDB.
    return NULL if value is None else (_EPOCH + dt.timedelta(microseconds=value)).isoformat()


_SIMPLE = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "UTINYINT": "smallint",
    "INTEGER": "integer",
    "USMALLINT": "integer",
    "BIGINT": "bigint",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20,0)",
    "HUGEINT": "numeric(39,0)",
    "UHUGEINT": "numeric(39,0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "BLOB": "bytea",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "UUID": "uuid",
}


def map_duckdb_column(name: str, data_type: str) -> tuple[str, str, object]:
    """(PostgreSQL type, DuckDB select expression, converter) for one DuckDB column."""
    t = data_type.upper().strip()
    col = _duck_ident(name)
    if t in _SIMPLE:
        return _SIMPLE[t], col, format_copy_value
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", t)
    if decimal:
        return f"numeric({decimal[1]},{decimal[2]})", col, format_copy_value
    if t == "TIMESTAMP WITH TIME ZONE":
        return "timestamptz", f"epoch_us({col})", _epoch_us_to_utc
    if t == "INTERVAL":  # DuckDB's text (e.g. "1 year 2 months 03:00:00") is PostgreSQL input
        return "interval", f"{col}::VARCHAR", format_copy_value
    if t.startswith("ENUM("):
        return "text", col, format_copy_value
    if t == "JSON":
        return "jsonb", col, format_copy_value
    if t.endswith("]") or t.startswith(("STRUCT(", "MAP(", "UNION(")):
        return "jsonb", f"to_json({col})::VARCHAR", format_copy_value
    raise DBBridgeError(
        f"column {name!r} has DuckDB type {data_type!r}, which db_bridge does not map to "
        "PostgreSQL; cast it in a DuckDB view and copy the view instead"
    )


class PyAirbyteDBBridge:
    def __init__(self, batch_size: int | None = None):
        self.batch_size = batch_size or db_bridge_settings().batch_size
        self.last_copy: dict | None = None

    def copy_duckdb_to_postgres(
        self,
        cache_path: str | Path,
        table_name: str,
        schema: str = "pyairbyte_cache",
        *,
        duckdb_schema: str = "main",
        target_table: str | None = None,
    ) -> bool:
        """Copy `duckdb_schema.table_name` from the DuckDB file into PostgreSQL
        `schema.target_table` (default: the same table name), replacing it atomically."""
        import duckdb

        path = Path(cache_path)
        if not path.is_file():
            raise DBBridgeError(f"DuckDB cache file {path} does not exist; check cache_path")
        target_table = target_table or table_name
        check_identifier(schema, "schema")
        check_identifier(target_table, "target table name")

        try:
            duck = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise DBBridgeError(f"cannot open DuckDB file {path}: {exc}") from exc
        try:
            columns = duck.execute(
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = {_duck_literal(duckdb_schema)} "
                f"and table_name = {_duck_literal(table_name)} order by ordinal_position"
            ).fetchall()
            if not columns:
                tables = [
                    f"{s}.{t}"
                    for s, t in duck.execute(
                        "select table_schema, table_name from information_schema.tables "
                        "order by 1, 2"
                    ).fetchall()
                ]
                raise DBBridgeError(
                    f"table {duckdb_schema}.{table_name} not found in DuckDB file {path}; "
                    f"tables there: {', '.join(tables) or '(none)'}"
                )
            plans = [ColumnPlan(name, *map_duckdb_column(name, type_)) for name, type_ in columns]
            select = ", ".join(p.select_sql for p in plans)
            result = duck.execute(
                f"select {select} from {_duck_ident(duckdb_schema)}.{_duck_ident(table_name)}"
            )
            batches = fetch_batches(result, self.batch_size)
            pg = connect_postgres()
            try:
                rows = replace_planned_table(pg, schema, target_table, plans, batches)
            except DBBridgeError:
                raise
            except Exception as exc:
                raise DBBridgeError(
                    f"copying {path}:{duckdb_schema}.{table_name} to {schema}.{target_table} "
                    f"failed: {type(exc).__name__}: {exc}"
                ) from exc
            finally:
                pg.close()
        finally:
            duck.close()
        self.last_copy = {
            "source": f"{path}:{duckdb_schema}.{table_name}",
            "target": f"{schema}.{target_table}",
            "rows": rows,
        }
        return True
