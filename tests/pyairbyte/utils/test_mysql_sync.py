"""mysql_sync against the real MariaDB on 127.0.0.1:3306 and the real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from pyairbyte.errors import DatabaseSyncError
from pyairbyte.utils.mysql_sync import SourceColumn, map_mysql_column, sync_mysql_tables

EVERY_TYPE_DDL = """
create table every_type (
  id int primary key,
  ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned,
  mi mediumint, miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned,
  d20_6 decimal(20,6), du decimal(10,2) unsigned, f float, dbl double,
  dte date, dtm datetime(6), ts timestamp(3) null default null, tm time(3), yr year,
  bit1 bit(1), bit12 bit(12),
  c char(5), vc varchar(100), tx text, mtx mediumtext,
  bin binary(4), vbin varbinary(16), bl blob,
  j json, e enum('small','large'), st set('a','b','c'),
  `Mixed Case "col"` varchar(10)
) character set utf8mb4
"""

ROWS_SQL = [
    # extremes
    """insert into every_type values (1,
      -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
      -9223372036854775808, 18446744073709551615,
      -12345678901234.123456, 99999999.99, 3.5, 2.718281828459045,
      '9999-12-31', '2024-02-29 23:59:59.999999', '2038-01-19 03:14:07.123', '-838:59:59.000',
      2155, b'1', b'101010101010',
      'ab', 'plain', 'line1\\nline2\\ttab \\\\ backslash \\\\N', repeat('x', 70000),
      'ab', x'00ff10', x'deadbeef00',
      '{"a": [1, 2.5, null], "b": {"nested": "å"}}', 'large', 'a,c', 'q"uote')""",
    # unicode and edge values
    """insert into every_type values (2,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      0.000001, 0.00, -0.25, -1e300,
      '1970-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:01.000', '00:00:00.001', 1901,
      b'0', b'0',
      'ÅÄÖ', 'Smörgåsbord 😀 漢字', 'Ünïcödé ✓', '',
      '', '', '',
      '[]', 'small', '', 'é')""",
    # all NULL
    "insert into every_type (id) values (3)",
]

ZERO_DATES_SQL = (
    "insert into every_type (id, dte, dtm, ts) "
    "values (4, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00')"
)

EXPECTED_COLUMN_TYPES = {
    "id": "integer",
    "ti": "smallint",
    "tiu": "smallint",
    "si": "smallint",
    "siu": "integer",
    "mi": "integer",
    "miu": "integer",
    "i": "integer",
    "iu": "bigint",
    "bi": "bigint",
    "biu": "numeric(20,0)",
    "d20_6": "numeric(20,6)",
    "du": "numeric(10,2)",
    "f": "real",
    "dbl": "double precision",
    "dte": "date",
    "dtm": "timestamp without time zone",
    "ts": "timestamp with time zone",
    "tm": "interval",
    "yr": "smallint",
    "bit1": "boolean",
    "bit12": "bigint",
    "c": "text",
    "vc": "text",
    "tx": "text",
    "mtx": "text",
    "bin": "bytea",
    "vbin": "bytea",
    "bl": "bytea",
    "j": "jsonb",
    "e": "text",
    "st": "text",
    'Mixed Case "col"': "text",
}

UTC = dt.UTC
EXPECTED_ROWS = {
    1: (
        -128,
        255,
        -32768,
        65535,
        -8388608,
        16777215,
        -2147483648,
        4294967295,
        -9223372036854775808,
        Decimal("18446744073709551615"),
        Decimal("-12345678901234.123456"),
        Decimal("99999999.99"),
        3.5,
        2.718281828459045,
        dt.date(9999, 12, 31),
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
        dt.datetime(2038, 1, 19, 3, 14, 7, 123000, tzinfo=UTC),
        -dt.timedelta(hours=838, minutes=59, seconds=59),
        2155,
        True,
        0b101010101010,
        "ab",
        "plain",
        "line1\nline2\ttab \\ backslash \\N",
        "x" * 70000,
        b"ab\x00\x00",
        b"\x00\xff\x10",
        b"\xde\xad\xbe\xef\x00",
        {"a": [1, 2.5, None], "b": {"nested": "å"}},
        "large",
        "a,c",
        'q"uote',
    ),
    2: (
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        Decimal("0"),
        Decimal("0.000001"),
        Decimal("0.00"),
        -0.25,
        -1e300,
        dt.date(1970, 1, 1),
        dt.datetime(1000, 1, 1),
        dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        dt.timedelta(milliseconds=1),
        1901,
        False,
        0,
        "ÅÄÖ",
        "Smörgåsbord 😀 漢字",
        "Ünïcödé ✓",
        "",
        b"\x00\x00\x00\x00",
        b"",
        b"",
        [],
        "small",
        "",
        "é",
    ),
    3: (None,) * 32,
    4: (None,) * 32,  # zero dates have no PostgreSQL equivalent and become NULL
}


def _pg_rows(pg_conn, schema: str, table: str, order_by: str = "1"):
    with pg_conn.cursor() as cur:
        cur.execute(f'select * from "{schema}"."{table}" order by {order_by}')
        return cur.fetchall()


def test_every_mapped_type_is_copied_value_exact(mysql_conn, mysql_db, cache_schema, pg_conn):
    with mysql_conn.cursor() as cur:
        cur.execute("drop table if exists every_type")
        cur.execute(EVERY_TYPE_DDL)
        cur.execute("set time_zone = '+00:00'")
        for statement in ROWS_SQL:
            cur.execute(statement)
        cur.execute("set sql_mode = ''")  # zero dates, as legacy databases have them
        cur.execute(ZERO_DATES_SQL)

    result = sync_mysql_tables("127.0.0.1", mysql_db, ["every_type"], cache_schema)

    assert result == {"every_type": 4}
    with pg_conn.cursor() as cur:
        cur.execute(
            """select column_name, case when data_type <> 'numeric' then data_type
                 else format('numeric(%%s,%%s)', numeric_precision, numeric_scale) end
               from information_schema.columns where table_schema = %s and table_name = 'every_type'
               order by ordinal_position""",
            (cache_schema,),
        )
        assert dict(cur.fetchall()) == EXPECTED_COLUMN_TYPES
        cur.execute(
            """select a.attname from pg_index i join pg_attribute a
               on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
               where i.indrelid = %s::regclass and i.indisprimary""",
            (f'"{cache_schema}".every_type',),
        )
        assert cur.fetchall() == [("id",)]
    rows = {
        r[0]: tuple(bytes(v) if isinstance(v, memoryview) else v for v in r[1:])
        for r in _pg_rows(pg_conn, cache_schema, "every_type")
    }
    assert rows.keys() == EXPECTED_ROWS.keys()
    for key, expected in EXPECTED_ROWS.items():
        for name, got, want in zip(
            list(EXPECTED_COLUMN_TYPES)[1:], rows[key], expected, strict=True
        ):
            assert (name, got) == (name, want), f"row {key}"


def test_rerun_replaces_instead_of_duplicating(mysql_conn, mysql_db, cache_schema, pg_conn):
    with mysql_conn.cursor() as cur:
        cur.execute('drop table if exists `weird "name"; drop`')
        cur.execute('create table `weird "name"; drop` (id int primary key, v varchar(10))')
        cur.execute("insert into `weird \"name\"; drop` values (1, 'a'), (2, 'b'), (3, 'c')")
    table = 'weird "name"; drop'

    first = sync_mysql_tables("127.0.0.1", mysql_db, [table], cache_schema, table_prefix="src_")
    assert first == {table: 3}
    target = f"src_{table}"
    assert _pg_rows(pg_conn, cache_schema, target.replace('"', '""')) == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
    ]

    with mysql_conn.cursor() as cur:
        cur.execute('delete from `weird "name"; drop` where id = 2')
        cur.execute("update `weird \"name\"; drop` set v = 'C' where id = 3")
    second = sync_mysql_tables("127.0.0.1", mysql_db, [table], cache_schema, table_prefix="src_")
    assert second == {table: 2}
    quoted = target.replace('"', '""')
    assert _pg_rows(pg_conn, cache_schema, quoted) == [(1, "a"), (3, "C")]

    # A view (as dbt creates) on the table: the table is kept and refilled in place.
    with pg_conn.cursor() as cur:
        cur.execute(
            f'create view "{cache_schema}".v_dep as select * from "{cache_schema}"."{quoted}"'
        )
    with mysql_conn.cursor() as cur:
        cur.execute("insert into `weird \"name\"; drop` values (4, 'd')")
    third = sync_mysql_tables("127.0.0.1", mysql_db, [table], cache_schema, table_prefix="src_")
    assert third == {table: 3}
    with pg_conn.cursor() as cur:
        cur.execute(f'select id, v from "{cache_schema}".v_dep order by id')
        assert cur.fetchall() == [(1, "a"), (3, "C"), (4, "d")]

    # Columns changed under a dependent view: a clear error, and the old data stays.
    with mysql_conn.cursor() as cur:
        cur.execute('alter table `weird "name"; drop` add column extra int')
    with pytest.raises(DatabaseSyncError) as fourth:
        sync_mysql_tables("127.0.0.1", mysql_db, [table], cache_schema, table_prefix="src_")
    assert fourth.value.failed_tables[table].startswith("TableReplaceError: ")
    assert "its columns changed and other objects depend on it" in str(fourth.value)
    assert "v_dep" in str(fourth.value)
    assert len(_pg_rows(pg_conn, cache_schema, quoted)) == 3


def test_missing_table_and_unsupported_type_fail_alone(mysql_conn, mysql_db, cache_schema):
    with mysql_conn.cursor() as cur:
        cur.execute("drop table if exists ok_table, geo")
        cur.execute("create table ok_table (id int)")
        cur.execute("insert into ok_table values (1)")
        cur.execute("create table geo (id int, p point)")

    with pytest.raises(DatabaseSyncError) as failure:
        sync_mysql_tables("127.0.0.1", mysql_db, ["nope", "geo", "ok_table"], cache_schema)

    result = failure.value
    assert result.rows == {"ok_table": 1}
    assert result.failed_tables == {
        "nope": f"SourceTableNotFoundError: table 'nope' not found in MySQL database '{mysql_db}'",
        "geo": "UnsupportedTypeError: column 'p' has MySQL type 'point', which mysql_sync does "
        "not map to PostgreSQL; leave the table out, or copy a view that casts the column",
    }
    assert str(result).startswith(
        f"copying into schema {cache_schema} from 127.0.0.1:3306/{mysql_db}: "
        "nope: SourceTableNotFoundError"
    )


def test_bad_arguments_are_rejected_before_connecting():
    with pytest.raises(ValueError, match="tables must be a non-empty list of table names"):
        sync_mysql_tables("127.0.0.1", "db", "users", "cache")
    with pytest.raises(ValueError, match="longer than PostgreSQL's 63-byte identifier limit"):
        sync_mysql_tables("127.0.0.1", "db", ["t" * 60], "cache", table_prefix="prefix_")


def test_type_mapping_unit():
    def pg_type(data_type, column_type, precision=None, scale=None):
        return map_mysql_column(SourceColumn("c", data_type, column_type, precision, scale)).pg_type

    assert pg_type("int", "int(11)") == "integer"
    assert pg_type("int", "int(10) unsigned") == "bigint"
    assert pg_type("bigint", "bigint(20) unsigned") == "numeric(20,0)"
    assert pg_type("decimal", "decimal(65,30)", 65, 30) == "numeric(65,30)"
    assert pg_type("bit", "bit(64)", 64) == "numeric(20,0)"
    assert pg_type("json", "json") == "jsonb"
    assert (
        map_mysql_column(SourceColumn("j", "longtext", "longtext", is_json=True)).pg_type == "jsonb"
    )


RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pyairbyte.utils.mysql_sync import sync_mysql_tables

    # Peak RSS from /proc (VmHWM). Not ru_maxrss: after fork+exec that still counts the parent
    # (pytest) image, so it would measure the test runner instead of the sync.
    def status_mb(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024

    database, schema = sys.argv[1], sys.argv[2]
    # Warm up imports and connections on a 20k-row table, so the baseline includes them.
    small = sync_mysql_tables("127.0.0.1", database, ["big_small"], schema)
    peak_small = status_mb("VmHWM")
    before = status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    big = sync_mysql_tables("127.0.0.1", database, ["big"], schema)
    print(json.dumps({"small": small, "big": big, "peak_small_mb": peak_small,
                      "rss_before_big_mb": before, "peak_big_mb": status_mb("VmHWM")}))
    """
)


def test_200k_rows_copy_with_flat_memory(mysql_conn, mysql_db, cache_schema, pg_conn, capsys):
    rows = 200_000
    with mysql_conn.cursor() as cur:
        cur.execute("drop table if exists big, big_small")
        ddl = (
            "(id int primary key, amount decimal(20,6), created datetime, label varchar(64), "
            "payload text)"
        )
        cur.execute(f"create table big {ddl}")
        cur.execute(f"create table big_small {ddl}")
        select = (
            "select seq, seq * 1.000001, '2024-01-01' + interval seq second, "
            "concat('label-', seq), repeat(md5(seq), 8) from seq_1_to_{n}"
        )
        cur.execute(f"insert into big {select.format(n=rows)}")
        cur.execute(f"insert into big_small {select.format(n=20_000)}")
        cur.execute("select sum(length(label) + length(payload) + 40) from big")
        payload_mb = float(cur.fetchone()[0]) / 2**20

    proc = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, mysql_db, cache_schema],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["big"] == {"big": rows}
    with pg_conn.cursor() as cur:
        cur.execute(
            "select count(*), count(distinct id), sum(amount), max(created) "
            f'from "{cache_schema}".big'
        )
        count, distinct, total, latest = cur.fetchone()
    assert (count, distinct) == (rows, rows)
    assert total == Decimal(rows * (rows + 1) // 2) * Decimal("1.000001")
    assert latest == dt.datetime(2024, 1, 1) + dt.timedelta(seconds=rows)

    growth = report["peak_big_mb"] - report["rss_before_big_mb"]
    with capsys.disabled():
        print(
            f"\n[mysql_sync] 200k rows ({payload_mb:.0f} MB of values): peak RSS "
            f"{report['peak_big_mb']:.0f} MB (process before it {report['rss_before_big_mb']:.0f} "
            f"MB, +{growth:.1f} MB); a 20k-row table peaked at {report['peak_small_mb']:.0f} MB"
        )
    # Flat: the copy costs a batch or two of memory, not the table, and ten times the rows of
    # the warm-up table does not raise the peak by more than a batch.
    assert growth < payload_mb / 2, report
    assert report["peak_big_mb"] - report["peak_small_mb"] < 12, report
