"""Copy MySQL/MariaDB tables into a PostgreSQL cache schema.

`sync_mysql_tables(server, database, tables, cache_schema)` reads each table with an unbuffered
server-side cursor (pymysql SSCursor) in batches, so memory stays flat however big the table is,
streams each batch into PostgreSQL with COPY, and swaps the new table in atomically (see
`pg_copy.replace_table`): a rerun replaces the table, a failed run leaves the old one.

Values are read as MySQL's own text (no decoders), which keeps decimals and datetimes exact and
avoids parsing and re-formatting them in Python. Type mapping (MySQL -> PostgreSQL):

| MySQL                                  | PostgreSQL                                  |
|----------------------------------------|---------------------------------------------|
| tinyint, smallint, tinyint unsigned    | smallint                                    |
| smallint unsigned, mediumint, int      | integer                                     |
| int unsigned, bigint                   | bigint                                      |
| bigint unsigned                        | numeric(20,0)                               |
| decimal(p,s) [unsigned]                | numeric(p,s)                                |
| float / double                         | real / double precision                     |
| date / datetime                        | date / timestamp (zero dates become NULL)   |
| timestamp                              | timestamptz (read in UTC)                   |
| time                                   | interval (MySQL TIME spans +-838 hours)     |
| year                                   | smallint                                    |
| bit(1) / bit(2..63) / bit(64)          | boolean / bigint / numeric(20,0)            |
| char, varchar, *text, enum, set        | text                                        |
| binary, varbinary, *blob               | bytea                                       |
| json (MySQL; MariaDB's json_valid text)| jsonb                                       |

Other types (spatial types, ...) fail that table with an error naming the column. Table and
column names are kept exactly (quoted identifiers). The source primary key is recreated.

Returns {table: rows copied}. Every table is attempted; if any failed, a
`pyairbyte.errors.DatabaseSyncError` names each one (`failed_tables`) and carries the rows of
the tables that were copied (`rows`). A missing table fails with `SourceTableNotFoundError`.

Arguments left None come from `mysql_settings()`, read at each call:

| env var               | default   |
|-----------------------|-----------|
| MYSQL_PORT            | 3306      |
| MYSQL_USER            | root      |
| MYSQL_PASSWORD        | (empty)   |
| MYSQL_SYNC_BATCH_SIZE | 10000     |
| POSTGRES_*            | see pyairbyte.settings |
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pyairbyte import settings
from pyairbyte.errors import SourceTableNotFoundError
from pyairbyte.utils.pg_copy import (
    NULL,
    ColumnPlan,
    UnsupportedTypeError,
    check_copy_request,
    copy_tables,
    fetch_batches,
    format_copy_value,
    raw_value,
    replace_planned_table,
)


class MySqlSettings(settings.EnvSettings):
    model_config = SettingsConfigDict(env_prefix="MYSQL_")

    port: settings.Port = 3306
    user: str = "root"
    password: str = Field("", repr=False)
    batch_size: settings.PositiveInt = Field(10_000, validation_alias="MYSQL_SYNC_BATCH_SIZE")


def mysql_settings() -> MySqlSettings:
    return settings.load(MySqlSettings)


@dataclass(frozen=True)
class SourceColumn:
    name: str
    data_type: str  # information_schema DATA_TYPE, lowercase: "int", "decimal", ...
    column_type: str  # full type: "int(10) unsigned", "bit(3)", "enum('a','b')"
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    is_json: bool = False


def _is_zero_date(value: str) -> bool:
    # '0000-00-00', '0000-00-00 00:00:00', and partial zeros like '2020-00-15' (NO_ZERO_IN_DATE off)
    return value.startswith("0000") or value[4:8] == "-00-" or value[7:10] == "-00"


def _date(value) -> str:
    return NULL if value is None or _is_zero_date(value) else value


def _timestamp_utc(value) -> str:
    # The session time zone is UTC, so MySQL TIMESTAMP text is UTC.
    return NULL if value is None or _is_zero_date(value) else value + "+00"


def _bit_to_bool(value) -> str:
    return NULL if value is None else ("t" if value != "0" else "f")


def _mysql_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def map_mysql_column(col: SourceColumn) -> ColumnPlan:
    """PostgreSQL type, SELECT expression and value converter for one MySQL column."""
    data_type = col.data_type.lower()
    unsigned = "unsigned" in col.column_type.lower()
    select = _mysql_ident(col.name)
    text = format_copy_value  # str as is (psycopg escapes it), bytes -> bytea

    def plan(pg_type, converter=raw_value, select_sql=select):
        return ColumnPlan(col.name, pg_type, select_sql, converter)

    if col.is_json or data_type == "json":
        return plan("jsonb", text)
    if data_type == "tinyint":
        return plan("smallint")
    if data_type == "smallint":
        return plan("integer" if unsigned else "smallint")
    if data_type in ("mediumint",):
        return plan("integer")
    if data_type in ("int", "integer"):
        return plan("bigint" if unsigned else "integer")
    if data_type == "bigint":
        return plan("numeric(20,0)" if unsigned else "bigint")
    if data_type in ("decimal", "numeric"):
        precision = col.numeric_precision or 10
        return plan(f"numeric({precision},{col.numeric_scale or 0})")
    if data_type == "float":
        return plan("real")
    if data_type in ("double", "real", "double precision"):
        return plan("double precision")
    if data_type == "date":
        return plan("date", _date)
    if data_type == "datetime":
        return plan("timestamp", _date)
    if data_type == "timestamp":
        return plan("timestamptz", _timestamp_utc)
    if data_type == "time":
        return plan("interval")
    if data_type == "year":
        return plan("smallint")
    if data_type == "bit":
        # BIT arrives as raw bytes; CAST makes it a decimal number in MySQL itself.
        width = col.numeric_precision or 1
        as_number = f"CAST({select} AS UNSIGNED)"
        if width == 1:
            return plan("boolean", _bit_to_bool, as_number)
        return plan("bigint" if width < 64 else "numeric(20,0)", raw_value, as_number)
    if data_type in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext"):
        return plan("text", text)
    if data_type in ("enum", "set"):
        return plan("text", text)
    if data_type in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"):
        return plan("bytea", text)
    raise UnsupportedTypeError(
        f"column {col.name!r} has MySQL type {col.column_type!r}, which mysql_sync does not map "
        "to PostgreSQL; leave the table out, or copy a view that casts the column"
    )


def _connect_mysql(server, port, user, password, database):
    import pymysql
    from pymysql.converters import encoders

    # Only encoders (for query parameters), no decoders: every value arrives as MySQL's text,
    # or as bytes for binary columns.
    conn = pymysql.connect(
        host=server,
        port=port,
        user=user,
        password=password,
        database=database,
        charset="utf8mb4",
        conv=dict(encoders),
        connect_timeout=10,
        autocommit=True,
    )
    with conn.cursor() as cur:
        # TIMESTAMP values in UTC; a long COPY on our side must not time out the stream.
        cur.execute("SET time_zone = '+00:00', net_write_timeout = 3600")
    return conn


_JSON_CHECK = re.compile(r"^json_valid\(`((?:[^`]|``)+)`\)$", re.IGNORECASE)


def _read_columns(conn, database: str, table: str) -> tuple[list[SourceColumn], list[str]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
            "ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        rows = cur.fetchall()
        if not rows:
            raise SourceTableNotFoundError(
                f"table {table!r} not found in MySQL database {database!r}"
            )
        json_columns: set[str] = set()
        # MariaDB stores JSON as LONGTEXT with a json_valid() check constraint. MySQL reports
        # JSON as DATA_TYPE json, and its CHECK_CONSTRAINTS has no TABLE_NAME column to ask.
        if "mariadb" in conn.get_server_info().lower():
            cur.execute(
                "SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s",
                (database, table),
            )
            for (clause,) in cur.fetchall():
                match = _JSON_CHECK.match(clause.strip())
                if match:
                    json_columns.add(match.group(1).replace("``", "`"))
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s "
            "AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
            (database, table),
        )
        primary_key = [r[0] for r in cur.fetchall()]
    columns = [
        SourceColumn(
            name=name,
            data_type=str(data_type).lower(),
            column_type=str(column_type),
            numeric_precision=int(precision) if precision is not None else None,
            numeric_scale=int(scale) if scale is not None else None,
            is_json=name in json_columns and str(data_type).lower() == "longtext",
        )
        for name, data_type, column_type, precision, scale in rows
    ]
    return columns, primary_key


def _stream_rows(conn, database: str, table: str, plans, batch_size: int) -> Iterator[list]:
    import pymysql

    select_list = ", ".join(p.select_sql for p in plans)
    cur = conn.cursor(pymysql.cursors.SSCursor)  # unbuffered: rows stay on the server until read
    cur.execute(f"SELECT {select_list} FROM {_mysql_ident(database)}.{_mysql_ident(table)}")
    yield from fetch_batches(cur, batch_size)
    cur.close()


def _sync_table(mysql_kwargs, database, table, target_schema, target_table, batch_size, pg) -> int:
    conn = _connect_mysql(database=database, **mysql_kwargs)
    try:
        columns, primary_key = _read_columns(conn, database, table)
        plans = [map_mysql_column(c) for c in columns]
        rows = _stream_rows(conn, database, table, plans, batch_size)
        return replace_planned_table(pg, target_schema, target_table, plans, rows, primary_key)
    finally:
        # Closing drops an unfinished unbuffered result instead of reading it to the end.
        conn.close()


def sync_mysql_tables(
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
    """Copy `tables` of MySQL `database` on `server` into PostgreSQL `cache_schema`.

    Each target table is named `table_prefix + table` and is replaced atomically. Returns the
    rows copied per table; raises DatabaseSyncError after trying them all if any failed.
    """
    check_copy_request("sync_mysql_tables", tables, cache_schema, lambda t: table_prefix + t)
    defaults = mysql_settings()
    mysql_kwargs = {
        "server": server,
        "port": port or defaults.port,
        "user": defaults.user if user is None else user,
        "password": defaults.password if password is None else password,
    }
    batch_size = batch_size or defaults.batch_size

    def copy_one(pg, table: str) -> int:
        return _sync_table(
            mysql_kwargs, database, table, cache_schema, table_prefix + table, batch_size, pg
        )

    return copy_tables(
        tables, cache_schema, copy_one, f"{server}:{mysql_kwargs['port']}/{database}"
    )
