"""db_bridge: a real DuckDB file with typed columns copied value-exact into PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import duckdb
import pytest

from pyairbyte.utils.db_bridge import DBBridgeError, PyAirbyteDBBridge
from tests.helpers import column_types

DDL = """
create table users (
  id integer, flag boolean, tiny tinyint, small smallint, big bigint, huge hugeint,
  ubig ubigint, f float, d double, amount decimal(20,6), name varchar, raw blob,
  born date, wake time, created timestamp, seen timestamptz, span interval, guid uuid,
  meta json, tags varchar[], address struct(street varchar, no integer),
  mood enum('happy', 'sad')
)
"""

INSERT = """
insert into users values
 (1, true, -128, -32768, -9223372036854775808, 170141183460469231731687303715884105727,
  18446744073709551615, 1.5, 2.718281828459045, -12345678901234.123456,
  'Smörgåsbord 😀 tab\there \\ back', '\\x00\\xFF'::blob, '2024-02-29', '23:59:59.999999',
  '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.789012+02',
  interval '1 year 2 months 3 days 04:05:06.5',
  '6f1c2e8e-0d7b-4d7a-9a55-1f1f2c3d4e5f', '{"a": [1, null, "å"]}', ['x', 'y'],
  {'street': 'Storgatan', 'no': 7}, 'sad'),
 (2, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
  null, null, null, null, null, null)
"""


@pytest.fixture
def duck_file(tmp_path):
    path = tmp_path / "cache.duckdb"
    con = duckdb.connect(str(path))
    con.execute(DDL)
    con.execute(INSERT)
    con.execute(
        "create table big as select range as id, 'row ' || range as label from range(25000)"
    )
    con.close()
    return path


def test_typed_table_is_copied_value_exact(duck_file, cache_schema, pg_conn):
    bridge = PyAirbyteDBBridge()
    assert bridge.copy_duckdb_to_postgres(duck_file, "users", cache_schema) is True
    assert bridge.last_copy["rows"] == 2

    types = column_types(pg_conn, cache_schema, "users")
    with pg_conn.cursor() as cur:
        cur.execute(f'select * from "{cache_schema}".users order by id')
        first, second = (
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
            for row in cur.fetchall()
        )
    assert types["huge"] == "numeric" and types["seen"] == "timestamp with time zone"
    assert types["meta"] == types["tags"] == types["address"] == "jsonb"
    assert types["span"] == "interval" and types["guid"] == "uuid" and types["raw"] == "bytea"
    assert first == (
        1,
        True,
        -128,
        -32768,
        -9223372036854775808,
        Decimal("170141183460469231731687303715884105727"),
        Decimal("18446744073709551615"),
        1.5,
        2.718281828459045,
        Decimal("-12345678901234.123456"),
        "Smörgåsbord 😀 tab\there \\ back",
        b"\x00\xff",
        dt.date(2024, 2, 29),
        dt.time(23, 59, 59, 999999),
        dt.datetime(2024, 2, 29, 12, 34, 56, 789012),
        dt.datetime(2024, 2, 29, 10, 34, 56, 789012, tzinfo=dt.UTC),
        dt.timedelta(
            days=365 + 60 + 3, hours=4, minutes=5, seconds=6.5
        ),  # 1 y = 365 d, 1 mon = 30 d
        str(uuid.UUID("6f1c2e8e-0d7b-4d7a-9a55-1f1f2c3d4e5f")),
        {"a": [1, None, "å"]},
        ["x", "y"],
        {"street": "Storgatan", "no": 7},
        "sad",
    )
    assert second == (2,) + (None,) * 21
    with pg_conn.cursor() as cur:  # the interval keeps its months, as PostgreSQL sees them
        cur.execute(f'select span::text from "{cache_schema}".users where id = 1')
        assert cur.fetchone()[0] == "1 year 2 mons 3 days 04:05:06.5"


def test_rerun_replaces_and_big_table_in_batches(duck_file, cache_schema, pg_conn):
    bridge = PyAirbyteDBBridge(batch_size=1000)
    for _ in range(2):
        assert bridge.copy_duckdb_to_postgres(duck_file, "big", cache_schema, target_table="b2")
    with pg_conn.cursor() as cur:
        cur.execute(f'select count(*), sum(id), max(label) from "{cache_schema}".b2')
        assert cur.fetchone() == (25000, Decimal(25000 * 24999 // 2), "row 9999")


def test_errors_name_the_file_and_table(duck_file, tmp_path, cache_schema):
    bridge = PyAirbyteDBBridge()
    missing = tmp_path / "nope.duckdb"
    with pytest.raises(DBBridgeError, match=f"DuckDB cache file {missing} does not exist"):
        bridge.copy_duckdb_to_postgres(missing, "users", cache_schema)
    assert not missing.exists()  # not created as an empty database
    with pytest.raises(
        DBBridgeError, match=r"table main.orders not found .* tables there: main.big, main.users"
    ):
        bridge.copy_duckdb_to_postgres(duck_file, "orders", cache_schema)


def test_quotes_in_names_are_literals(duck_file, cache_schema, pg_conn):
    from psycopg2 import sql

    table = 'o\'brien "x"'
    con = duckdb.connect(str(duck_file))
    con.execute('create table "o\'brien ""x""" as select 1 as "it\'s"')
    con.close()
    bridge = PyAirbyteDBBridge()
    assert bridge.copy_duckdb_to_postgres(duck_file, table, cache_schema)
    with pg_conn.cursor() as cur:
        cur.execute(
            sql.SQL("select {} from {}").format(
                sql.Identifier("it's"), sql.Identifier(cache_schema, table)
            )
        )
        assert cur.fetchall() == [(1,)]
    with pytest.raises(DBBridgeError, match="table main.o'' not found"):
        bridge.copy_duckdb_to_postgres(duck_file, "o''", cache_schema)
