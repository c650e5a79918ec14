"""Copy SQL Server tables into a PostgreSQL cache schema (pymssql, no ODBC driver needed).

`sync_mssql_tables(server, database, tables, cache_schema)` has the design of mysql_sync: rows
stream from the server in batches (pymssql reads the result set row by row, it does not buffer
it), go into PostgreSQL with COPY, and each table is swapped in atomically
(`pg_copy.replace_table`). Tables are "name" (schema dbo) or "schema.name"; the target table
is `table_prefix + name`.

Type mapping (SQL Server -> PostgreSQL):

| SQL Server                                    | PostgreSQL                          |
|-----------------------------------------------|-------------------------------------|
| bit                                           | boolean                             |
| tinyint (0..255), smallint                    | smallint                            |
| int / bigint                                  | integer / bigint                    |
| decimal(p,s), numeric(p,s)                    | numeric(p,s)                        |
| money / smallmoney                            | numeric(19,4) / numeric(10,4)       |
| real, float(1..24) / float(25..53)            | real / double precision             |
| date                                          | date                                |
| datetime, datetime2, smalldatetime            | timestamp                           |
| datetimeoffset                                | timestamptz                         |
| time                                          | time                                |
| char, varchar, text, nchar, nvarchar, ntext   | text                                |
| xml, sql_variant                              | text                                |
| binary, varbinary, image, rowversion          | bytea                               |
| uniqueidentifier                              | uuid                                |

Dates and times are read as ISO 8601 text (CONVERT style 126/127), which PostgreSQL parses
exactly. Other types (geography, geometry, hierarchyid, ...) fail that table with an error
naming the column.

Returns {table: rows copied}; if any table failed, `pyairbyte.errors.DatabaseSyncError` names
each one after all were attempted (as in mysql_sync).

Arguments left None come from `mssql_settings()`, read at each call:

| env var               | default |
|-----------------------|---------|
| MSSQL_PORT            | 1433    |
| MSSQL_USER            | sa      |
| MSSQL_PASSWORD        | (empty) |
| MSSQL_LOGIN_TIMEOUT   | 10      |
| MSSQL_SYNC_BATCH_SIZE | 10000   |
| POSTGRES_*            | see pyairbyte.settings |
(MSSQL_HOST and MSSQL_DATABASE are read by callers such as the tests, not by this module.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pyairbyte import settings
from pyairbyte.errors import SourceTableNotFoundError
from pyairbyte.utils.pg_copy import (
    ColumnPlan,
    UnsupportedTypeError,
    check_copy_request,
    copy_tables,
    fetch_batches,
    format_copy_value,
    raw_value,
    replace_planned_table,
)


class MssqlSettings(settings.EnvSettings):
    model_config = SettingsConfigDict(env_prefix="MSSQL_")

    port: settings.Port = 1433
    user: str = "sa"
    password: str = Field("", repr=False)
    login_timeout: settings.PositiveInt = 10
    batch_size: settings.PositiveInt = Field(10_000, validation_alias="MSSQL_SYNC_BATCH_SIZE")


def mssql_settings() -> MssqlSettings:
    return settings.load(MssqlSettings)


@dataclass(frozen=True)
class MssqlColumn:
    name: str
    data_type: str  # INFORMATION_SCHEMA.COLUMNS.DATA_TYPE, e.g. "nvarchar", "decimal"
    numeric_precision: int | None = None
    numeric_scale: int | None = None


def mssql_ident(name: str) -> str:
    return "[" + name.replace("]", "]]") + "]"


def map_mssql_column(col: MssqlColumn) -> ColumnPlan:
    """PostgreSQL type, SELECT expression and value converter for one SQL Server column."""
    data_type = col.data_type.lower()
    select = mssql_ident(col.name)
    value = format_copy_value  # pymssql's Python values (int, Decimal, bytes, UUID, str, ...)

    def plan(pg_type, converter=value, select_sql=select):
        return ColumnPlan(col.name, pg_type, select_sql, converter)

    if data_type == "bit":
        return plan("boolean")
    if data_type in ("tinyint", "smallint"):
        return plan("smallint")
    if data_type == "int":
        return plan("integer")
    if data_type == "bigint":
        return plan("bigint")
    if data_type in ("decimal", "numeric"):
        return plan(f"numeric({col.numeric_precision or 18},{col.numeric_scale or 0})")
    if data_type == "money":
        return plan("numeric(19,4)")
    if data_type == "smallmoney":
        return plan("numeric(10,4)")
    if data_type == "real":
        return plan("real")
    if data_type == "float":
        return plan("real" if (col.numeric_precision or 53) <= 24 else "double precision")
    if data_type == "date":
        return plan("date", raw_value, f"CONVERT(varchar(10), {select}, 126)")
    if data_type in ("datetime", "datetime2", "smalldatetime"):
        return plan("timestamp", raw_value, f"CONVERT(varchar(27), {select}, 126)")
    if data_type == "datetimeoffset":
        return plan("timestamptz", raw_value, f"CONVERT(varchar(34), {select}, 127)")
    if data_type == "time":
        return plan("time", raw_value, f"CONVERT(varchar(16), {select})")
    if data_type in ("char", "varchar", "text", "nchar", "nvarchar", "ntext"):
        return plan("text")
    if data_type == "xml":
        return plan("text", value, f"CAST({select} AS nvarchar(max))")
    if data_type == "sql_variant":
        return plan("text", value, f"CONVERT(nvarchar(4000), {select})")
    if data_type in ("binary", "varbinary", "image", "timestamp", "rowversion"):
        return plan("bytea")  # DATA_TYPE "timestamp" is SQL Server's rowversion, not a time
    if data_type == "uniqueidentifier":
        return plan("uuid")
    raise UnsupportedTypeError(
        f"column {col.name!r} has SQL Server type {col.data_type!r}, which mssql_sync does not "
        "map to PostgreSQL; leave the table out, or copy a view that casts the column"
    )


def split_table_name(name: str) -> tuple[str, str]:
    """ "schema.table" -> (schema, table); "table" -> ("dbo", table)."""
    schema, _, table = name.rpartition(".")
    return (schema or "dbo", table)


def _connect_mssql(server, port, user, password, database, login_timeout):
    import pymssql

    return pymssql.connect(
        server=server,
        port=str(port),
        user=user,
        password=password,
        database=database,
        login_timeout=login_timeout,
        charset="UTF-8",
    )


def _read_columns(conn, schema: str, table: str) -> tuple[list[MssqlColumn], list[str]]:
    cur = conn.cursor()
    cur.execute(
        "SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE "
        "FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "ORDER BY ORDINAL_POSITION",
        (schema, table),
    )
    rows = cur.fetchall()
    if not rows:
        raise SourceTableNotFoundError(
            f"table {schema}.{table} not found in the SQL Server database"
        )
    cur.execute(
        "SELECT k.COLUMN_NAME FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS c "
        "JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE k ON k.CONSTRAINT_NAME = c.CONSTRAINT_NAME "
        "AND k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME "
        "WHERE c.CONSTRAINT_TYPE = 'PRIMARY KEY' AND c.TABLE_SCHEMA = %s AND c.TABLE_NAME = %s "
        "ORDER BY k.ORDINAL_POSITION",
        (schema, table),
    )
    primary_key = [r[0] for r in cur.fetchall()]
    columns = [
        MssqlColumn(
            name,
            str(data_type),
            int(precision) if precision is not None else None,
            int(scale) if scale is not None else None,
        )
        for name, data_type, precision, scale in rows
    ]
    return columns, primary_key


def _stream_rows(conn, schema, table, plans, batch_size) -> Iterator[list]:
    cur = conn.cursor()
    select_list = ", ".join(p.select_sql for p in plans)
    cur.execute(f"SELECT {select_list} FROM {mssql_ident(schema)}.{mssql_ident(table)}")
    yield from fetch_batches(cur, batch_size)


def sync_mssql_tables(
    server: str,
    database: str,
    tables: list[str],
    cache_schema: str,
    *,
    port: int | None = None,
    user: str | None = None,
    password: str | None = None,
    table_prefix: str = "",
    batch_size: int | None = None,
) -> dict[str, int]:
    """Copy `tables` of SQL Server `database` on `server` into PostgreSQL `cache_schema`.

    Returns the rows copied per table; raises DatabaseSyncError after trying them all if any
    failed.
    """
    check_copy_request(
        "sync_mssql_tables", tables, cache_schema, lambda t: table_prefix + split_table_name(t)[1]
    )
    defaults = mssql_settings()
    port = port or defaults.port
    user = defaults.user if user is None else user
    password = defaults.password if password is None else password
    batch_size = batch_size or defaults.batch_size

    def copy_one(pg, name: str) -> int:
        schema, table = split_table_name(name)
        conn = _connect_mssql(server, port, user, password, database, defaults.login_timeout)
        try:
            columns, primary_key = _read_columns(conn, schema, table)
            plans = [map_mssql_column(c) for c in columns]
            rows = _stream_rows(conn, schema, table, plans, batch_size)
            return replace_planned_table(
                pg, cache_schema, table_prefix + table, plans, rows, primary_key
            )
        finally:
            conn.close()

    return copy_tables(tables, cache_schema, copy_one, f"{server}:{port}/{database}")
