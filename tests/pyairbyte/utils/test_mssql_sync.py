"""mssql_sync: the type mapping (unit), the PostgreSQL half with pymssql-like values (real
PostgreSQL), and an end-to-end test that needs a SQL Server (MSSQL_HOST)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from decimal import Decimal

import pytest

from pyairbyte.utils.mssql_sync import (
    MssqlColumn,
    UnsupportedTypeError,
    map_mssql_column,
    mssql_ident,
    split_table_name,
    sync_mssql_tables,
)
from pyairbyte.utils.pg_copy import PgColumn, connect_postgres, replace_table

MAPPING = [
    # (DATA_TYPE, precision, scale) -> PostgreSQL type
    (("bit", None, None), "boolean"),
    (("tinyint", 3, 0), "smallint"),
    (("smallint", 5, 0), "smallint"),
    (("int", 10, 0), "integer"),
    (("bigint", 19, 0), "bigint"),
    (("decimal", 20, 6), "numeric(20,6)"),
    (("numeric", 38, 0), "numeric(38,0)"),
    (("money", 19, 4), "numeric(19,4)"),
    (("smallmoney", 10, 4), "numeric(10,4)"),
    (("real", 24, None), "real"),
    (("float", 24, None), "real"),
    (("float", 53, None), "double precision"),
    (("date", None, None), "date"),
    (("datetime", None, None), "timestamp"),
    (("datetime2", None, None), "timestamp"),
    (("smalldatetime", None, None), "timestamp"),
    (("datetimeoffset", None, None), "timestamptz"),
    (("time", None, None), "time"),
    (("char", None, None), "text"),
    (("varchar", None, None), "text"),
    (("text", None, None), "text"),
    (("nchar", None, None), "text"),
    (("nvarchar", None, None), "text"),
    (("ntext", None, None), "text"),
    (("xml", None, None), "text"),
    (("sql_variant", None, None), "text"),
    (("binary", None, None), "bytea"),
    (("varbinary", None, None), "bytea"),
    (("image", None, None), "bytea"),
    (("timestamp", None, None), "bytea"),  # SQL Server's rowversion
    (("uniqueidentifier", None, None), "uuid"),
]


@pytest.mark.parametrize(
    ("source", "pg_type"), MAPPING, ids=[m[0][0] + "-" + str(m[0][1]) for m in MAPPING]
)
def test_type_mapping(source, pg_type):
    assert map_mssql_column(MssqlColumn("c", *source)).pg_type == pg_type


def test_temporal_columns_are_read_as_iso_text():
    assert (
        map_mssql_column(MssqlColumn("d", "datetime2")).select_sql
        == "CONVERT(varchar(27), [d], 126)"
    )
    assert (
        map_mssql_column(MssqlColumn("o", "datetimeoffset")).select_sql
        == "CONVERT(varchar(34), [o], 127)"
    )
    assert map_mssql_column(MssqlColumn("n", "nvarchar")).select_sql == "[n]"


def test_unsupported_type_names_the_column():
    with pytest.raises(
        UnsupportedTypeError, match="column 'shape' has SQL Server type 'geography'"
    ):
        map_mssql_column(MssqlColumn("shape", "geography"))


def test_identifiers():
    assert mssql_ident("a]b") == "[a]]b]"
    assert split_table_name("orders") == ("dbo", "orders")
    assert split_table_name("sales.orders") == ("sales", "orders")
    with pytest.raises(ValueError, match="tables must be a non-empty list"):
        sync_mssql_tables("host", "db", [], "cache")


def test_pymssql_values_land_exactly_in_postgres(pg, cache_schema, pg_conn):
    """The PostgreSQL half of mssql_sync, fed the Python values pymssql returns."""
    source = [
        MssqlColumn("id", "int", 10, 0),
        MssqlColumn("flag", "bit"),
        MssqlColumn("amount", "money", 19, 4),
        MssqlColumn("ratio", "float", 53),
        MssqlColumn("guid", "uniqueidentifier"),
        MssqlColumn("name", "nvarchar"),
        MssqlColumn("blob", "varbinary"),
        MssqlColumn("created", "datetime2"),
        MssqlColumn("seen", "datetimeoffset"),
        MssqlColumn("at", "time"),
    ]
    plans = [map_mssql_column(c) for c in source]
    guid = uuid.UUID("6f1c2e8e-0d7b-4d7a-9a55-1f1f2c3d4e5f")
    rows = [
        (
            1,
            True,
            Decimal("922337203685477.5807"),
            1e-300,
            guid,
            "Ö\tx\\y",
            b"\x00\x01",
            "2024-02-29T23:59:59.1234560",
            "2024-02-29T23:59:59.1234560+02:00",
            "13:45:00.0000000",
        ),
        (2, None, None, None, None, None, None, None, None, None),
    ]
    conn = connect_postgres()
    try:
        n = replace_table(
            conn,
            cache_schema,
            "orders",
            [PgColumn(p.name, p.pg_type) for p in plans],
            [rows],
            converters=[p.converter for p in plans],
            primary_key=["id"],
        )
    finally:
        conn.close()
    assert n == 2
    with pg_conn.cursor() as cur:
        cur.execute(f'select * from "{cache_schema}".orders order by id')
        got = [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in cur.fetchall()
        ]
    assert got[0] == (
        1,
        True,
        Decimal("922337203685477.5807"),
        1e-300,
        str(guid),
        "Ö\tx\\y",
        b"\x00\x01",
        dt.datetime(2024, 2, 29, 23, 59, 59, 123456),
        dt.datetime(2024, 2, 29, 21, 59, 59, 123456, tzinfo=dt.UTC),
        dt.time(13, 45),
    )
    assert got[1] == (2,) + (None,) * 9


@pytest.mark.skipif(
    not os.environ.get("MSSQL_HOST"),
    reason="no SQL Server here: set MSSQL_HOST (and MSSQL_PORT/USER/PASSWORD) to run it",
)
def test_end_to_end_against_sql_server(pg, cache_schema, pg_conn):
    import pymssql

    host = os.environ["MSSQL_HOST"]
    port = os.environ.get("MSSQL_PORT", "1433")
    user, password = os.environ.get("MSSQL_USER", "sa"), os.environ.get("MSSQL_PASSWORD", "")
    database = f"dp_test_{os.getpid()}"
    admin = pymssql.connect(server=host, port=port, user=user, password=password, autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE {database}")
    try:
        conn = pymssql.connect(
            server=host,
            port=port,
            user=user,
            password=password,
            database=database,
            autocommit=True,
        )
        cur = conn.cursor()
        cur.execute(
            """CREATE TABLE dbo.every_type (
                id int PRIMARY KEY, b bit, ti tinyint, si smallint, bi bigint,
                d decimal(20,6), m money, r real, f float, dte date, dt2 datetime2(6),
                dto datetimeoffset(3), t time(3), nv nvarchar(50), vb varbinary(8),
                g uniqueidentifier, x xml)"""
        )
        cur.execute(
            """INSERT INTO dbo.every_type VALUES
               (1, 1, 255, -32768, 9223372036854775807, -12345678901234.123456, 12.3456, 0.5,
                2.718281828459045, '2024-02-29', '2024-02-29 23:59:59.123456',
                '2024-02-29 23:59:59.123 +02:00', '13:45:00.250', N'Smörgåsbord 😀',
                0x00FF, '6F1C2E8E-0D7B-4D7A-9A55-1F1F2C3D4E5F', '<a>1</a>'),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                NULL, NULL, NULL)"""
        )
        conn.close()
        first = sync_mssql_tables(host, database, ["dbo.every_type"], cache_schema)
        second = sync_mssql_tables(host, database, ["every_type"], cache_schema)
        assert first == {"dbo.every_type": 2}
        assert second == {"every_type": 2}
        with pg_conn.cursor() as cur:
            cur.execute(f'select * from "{cache_schema}".every_type order by id')
            rows = cur.fetchall()
        assert len(rows) == 2
        assert rows[0][:6] == (
            1,
            True,
            255,
            -32768,
            9223372036854775807,
            Decimal("-12345678901234.123456"),
        )
        assert rows[0][9:13] == (
            dt.date(2024, 2, 29),
            dt.datetime(2024, 2, 29, 23, 59, 59, 123456),
            dt.datetime(2024, 2, 29, 21, 59, 59, 123000, tzinfo=dt.UTC),
            dt.time(13, 45, 0, 250000),
        )
        assert rows[0][13] == "Smörgåsbord 😀"
        assert rows[1][1:] == (None,) * 16
    finally:
        admin.cursor().execute(f"DROP DATABASE {database}")
        admin.close()
