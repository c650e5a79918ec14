"""PyAirbyteCacheDBManager on the real PostgreSQL, including hostile table names."""

from __future__ import annotations

import pytest
from psycopg2 import sql

from pyairbyte.errors import CacheCleanupError
from pyairbyte.utils.cache_db_manager import CleanupResult, PyAirbyteCacheDBManager

EVIL = 'x"; drop schema victim cascade; --'


@pytest.fixture
def cache(cache_schema, pg_conn):
    """A cache schema as PyAirbyte leaves it: two connectors' tables and the state table."""
    s = sql.Identifier(cache_schema)
    with pg_conn.cursor() as cur:
        cur.execute("drop schema if exists victim cascade")
        cur.execute("create schema victim; create table victim.precious (id int)")
        cur.execute(sql.SQL("create schema {}").format(s))
        for table, rows in [
            ("next_erp_users", 10),
            ("next_erp_orders", 3),
            ("next_erpxusers", 2),  # not next_erp_: a LIKE 'next_erp_%' would match it
            ("faker_users", 5),
            (EVIL, 4),
        ]:
            t = sql.Identifier(cache_schema, table)
            cur.execute(sql.SQL("create table {} (id int, payload text)").format(t))
            cur.execute(
                sql.SQL(
                    "insert into {} select g, repeat('x', 100) from generate_series(1, %s) g"
                ).format(t),
                (rows,),
            )
        cur.execute(
            sql.SQL(
                "create table {} (source_name text, stream_name text, table_name text primary key,"
                " state_json text)"
            ).format(sql.Identifier(cache_schema, "_airbyte_state"))
        )
        cur.execute(
            sql.SQL(
                "insert into {} values ('next-erp', 'users', 'next_erp_users', '{{}}'), "
                "('next-erp', 'orders', 'next_erp_orders', '{{}}'), "
                "('faker', 'users', 'faker_users', '{{}}')"
            ).format(sql.Identifier(cache_schema, "_airbyte_state"))
        )
    yield PyAirbyteCacheDBManager(cache_schema)
    with pg_conn.cursor() as cur:
        cur.execute("drop schema if exists victim cascade")


def _victim_intact(pg_conn) -> bool:
    with pg_conn.cursor() as cur:
        cur.execute("select to_regclass('victim.precious') is not null")
        return cur.fetchone()[0]


def test_listing_counts_and_sizes(cache, cache_schema):
    assert cache_schema in cache.list_schemas()
    assert "victim" in cache.list_schemas()
    assert "pg_catalog" not in cache.list_schemas()
    assert "pg_catalog" in cache.list_schemas(include_system=True)
    assert cache.list_tables() == sorted(
        [
            "_airbyte_state",
            "faker_users",
            "next_erp_orders",
            "next_erp_users",
            "next_erpxusers",
            EVIL,
        ]
    )
    assert cache.get_row_count("next_erp_users") == 10
    assert cache.get_row_count(EVIL) == 4
    assert cache.get_table_size("next_erp_users") >= 8192

    stats = {s["table"]: s for s in cache.get_table_stats()}
    assert stats["next_erp_orders"]["rows"] == 3
    assert stats["next_erp_orders"]["size"].endswith(("kB", "bytes"))
    summary = cache.get_schema_summary()
    assert (summary["tables"], summary["total_rows"]) == (6, 10 + 3 + 2 + 5 + 4 + 3)
    assert summary["total_bytes"] == sum(s["total_bytes"] for s in stats.values())
    assert cache.schema_exists() and not cache.schema_exists("no_such_schema")


def test_cleanup_connector_tables_by_prefix_and_its_state(cache, cache_schema, pg_conn):
    dry = cache.cleanup_connector_tables("next-erp", dry_run=True)
    assert dry.tables_dropped == ["next_erp_orders", "next_erp_users"]
    assert cache.table_exists("next_erp_users")

    result = cache.cleanup_connector_tables("next-erp")

    assert result == CleanupResult(
        schema=cache_schema,
        prefix="next_erp_",
        tables_dropped=["next_erp_orders", "next_erp_users"],
        state_rows_deleted=2,
        dry_run=False,
    )
    assert cache.list_tables() == sorted(["_airbyte_state", "faker_users", "next_erpxusers", EVIL])
    with pg_conn.cursor() as cur:
        cur.execute(
            sql.SQL("select table_name from {}").format(
                sql.Identifier(cache_schema, "_airbyte_state")
            )
        )
        assert cur.fetchall() == [("faker_users",)]
    with pytest.raises(ValueError, match="prefix must be a non-empty string"):
        cache.cleanup_tables_by_prefix("")


def test_cleanup_reports_dependent_views_and_drops_nothing(cache, cache_schema, pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute(
            sql.SQL("create view {} as select * from {}").format(
                sql.Identifier(cache_schema, "v_users"), sql.Identifier(cache_schema, "faker_users")
            )
        )
    with pytest.raises(CacheCleanupError) as failure:
        cache.cleanup_connector_tables("faker")
    message = str(failure.value)
    assert "DependentObjectsStillExist" in message and "v_users" in message
    assert "nothing was dropped" in message and "cascade=True" in message
    assert cache.table_exists("faker_users")
    assert cache.cleanup_connector_tables("faker", cascade=True).tables_dropped == ["faker_users"]


def test_hostile_table_name_is_harmless(cache, cache_schema, pg_conn):
    cache.truncate_table(EVIL)
    assert cache.get_row_count(EVIL) == 0
    assert _victim_intact(pg_conn)

    assert cache.drop_table(EVIL) is True
    assert cache.drop_table(EVIL) is False
    assert EVIL not in cache.list_tables()
    assert _victim_intact(pg_conn)

    # The same string as a schema name and as a prefix.
    hostile = PyAirbyteCacheDBManager(EVIL)
    assert hostile.list_tables() == []
    assert hostile.cleanup_tables_by_prefix(EVIL).tables_dropped == []
    assert cache.cleanup_tables_by_prefix('x"').tables_dropped == []
    with pytest.raises(Exception, match="does not exist"):
        cache.truncate_table(EVIL)
    assert _victim_intact(pg_conn)
    assert cache.list_tables() == sorted(
        ["_airbyte_state", "faker_users", "next_erp_orders", "next_erp_users", "next_erpxusers"]
    )


def test_for_named_cache_uses_its_schema(pg, monkeypatch):
    monkeypatch.setenv("SWEDEN_CACHE_SCHEMA", "cache_sweden_test")
    manager = PyAirbyteCacheDBManager.for_cache("sweden")
    assert manager.schema == "cache_sweden_test"
    manager.create_schema()
    try:
        assert manager.schema_exists() and manager.list_tables() == []
    finally:
        with manager._cursor() as cur:
            cur.execute("drop schema cache_sweden_test")
