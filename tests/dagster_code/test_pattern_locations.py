"""The guide's three asset patterns as code locations: each `defs` loads, and each job runs end
to end in-process against PostgreSQL, MariaDB, and local GraphQL / HTTP servers.

The locations reach those systems through resources: tests either pass their own resource
instances, or set the env vars the locations' EnvVars name, and check that a missing one is
named when the run launches."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from dagster import DagsterInstance
from psycopg2 import sql

from dagster_code.lib.resources import EventApiResource, GraphQLResource, PostgresCacheResource
from pyairbyte.utils import event_store as es
from tests.fixtures.services import MYSQL_HOST
from tests.helpers import rows, scalar, step_failure_messages

LOCATIONS = {
    "sweden_sync": (
        "sweden_sync_pipeline",
        {"cleanup_airbyte_cache_tables_sweden", "sample_connector_sync_assets_sweden"},
    ),
    "nrc_integrations": (
        "nrc_integrations_pipeline",
        {"user_sync_event_gen", "user_sync_event_handler"},
    ),
    "mysql_tables_sync": ("mysql_tables_sync_pipeline", {"mysql_tables_sync_assets"}),
}


def _run(defs, job_name: str, resources: dict | None = None):
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(
        instance=DagsterInstance.ephemeral(), raise_on_error=False, resources=resources
    )


def _launch_error(defs, job_name: str) -> str:
    """The error text of a run that could not start (or of its failed steps)."""
    try:
        result = _run(defs, job_name)
    except Exception as exc:  # resources that cannot be built stop the launch itself
        return str(exc)
    assert not result.success
    return "\n".join(step_failure_messages(result))


def _metadata(result, asset_name: str) -> dict:
    materialization = result.asset_materializations_for_node(asset_name)[0]
    return {key: value.value for key, value in materialization.metadata.items()}


def test_every_location_loads_without_heavy_imports():
    """Code servers import these; airbyte, duckdb and the DB drivers must stay lazy, and no
    setting is needed to load (EnvVars resolve at launch)."""
    script = f"""
import importlib, json, os, sys
for name in ("HASURA_GRAPHQL_ENDPOINT", "HASURA_GRAPHQL_ADMIN_SECRET", "NRC_USER_SYNC_URL",
             "MYSQL_HOST", "MYSQL_SYNC_DATABASE", "MYSQL_SYNC_TABLES"):
    os.environ.pop(name, None)
for name, (job, assets) in {LOCATIONS!r}.items():
    defs = importlib.import_module("dagster_code." + name).defs
    keys = {{k.to_user_string() for k in defs.resolve_all_asset_keys()}}
    assert keys == assets, (name, keys)
    defs.resolve_job_def(job)
heavy = [m for m in ("airbyte", "duckdb", "pymysql", "pymssql", "pandas") if m in sys.modules]
print(json.dumps(heavy))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_sweden_cleanup_then_sync_into_the_second_cache(pg, pg_conn, sample_api):
    from dagster_code.sweden_sync import defs

    schema = "cache_sweden_pattern"
    sweden_cache = PostgresCacheResource(cache_name="sweden", schema_name=schema)
    with pg_conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        cur.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
        # Left from earlier runs: a stale products table with another shape, a stream that no
        # longer exists, and another connector's table that must survive.
        for table, ddl in [
            ("sample_connector_products", "(id text)"),
            ("sample_connector_retired_stream", "(id int)"),
            ("other_connector_users", "(id int)"),
        ]:
            cur.execute(sql.SQL("create table {} " + ddl).format(sql.Identifier(schema, table)))

    try:
        result = _run(defs, "sweden_sync_pipeline", {"sweden_cache": sweden_cache})
        assert result.success, step_failure_messages(result)

        cleanup = _metadata(result, "cleanup_airbyte_cache_tables_sweden")
        assert cleanup["tables_dropped"] == [
            "sample_connector_products",
            "sample_connector_retired_stream",
        ]
        sync = _metadata(result, "sample_connector_sync_assets_sweden")
        assert sync["cache_schema"] == schema and sync["records_synced"] == 30
        assert (
            scalar(pg_conn, f"select count(distinct id) from {schema}.sample_connector_products")
            == 30
        )
        tables = {
            r[0]
            for r in rows(
                pg_conn, "select tablename from pg_tables where schemaname = %s", (schema,)
            )
        }
        assert "sample_connector_retired_stream" not in tables
        assert "other_connector_users" in tables
    finally:
        with pg_conn.cursor() as cur:
            cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def test_nrc_events_from_graphql_processed_through_api_call(event_schema, graphql_server, http_api):
    from dagster_code.nrc_integrations import defs

    resources = {
        "graphql": GraphQLResource(
            endpoint=graphql_server.url, admin_secret=graphql_server.admin_secret
        ),
        "user_sync_api": EventApiResource(url=f"{http_api.url}/users"),
    }
    http_api.routes["/users"] = (201, '{"ok": true}')

    first = _run(defs, "nrc_integrations_pipeline", resources)
    assert first.success, step_failure_messages(first)
    assert _metadata(first, "user_sync_event_gen")["events_created"] == 2  # the active users
    assert _metadata(first, "user_sync_event_handler")["processed"] == 2
    sent = sorted(json.loads(r["body"])["user_id"] for r in http_api.received)
    assert sent == [1, 3]

    # A new active user, and the target API is down: the run fails, the event is kept as failed.
    graphql_server.users.append(
        {"id": 4, "first_name": "Ola", "last_name": "Nordmann", "active": True}
    )
    http_api.routes["/users"] = (503, "maintenance")
    second = _run(defs, "nrc_integrations_pipeline", resources)
    assert not second.success
    assert any("1 of 1 USER_SYNC_EVENT events failed" in m for m in step_failure_messages(second))
    (failed,) = es.get_unprocessed_or_failed_events("USER_SYNC_EVENT")
    assert (failed["event_data"]["user_id"], failed["status"], failed["attempts"]) == (
        4,
        "failed",
        1,
    )
    assert failed["response_status_code"] == 503

    # The API is back: only the failed event is sent again; unchanged users are not re-queued.
    http_api.routes["/users"] = (200, "ok")
    third = _run(defs, "nrc_integrations_pipeline", resources)
    assert third.success, step_failure_messages(third)
    gen = _metadata(third, "user_sync_event_gen")
    assert (gen["events_created"], gen["duplicates_skipped"]) == (0, 3)
    assert _metadata(third, "user_sync_event_handler")["processed"] == 1
    assert es.get_event(failed["id"])["status"] == "processed"
    assert [json.loads(r["body"])["user_id"] for r in http_api.received] == [1, 3, 4, 4]


def test_nrc_reads_its_settings_from_env_at_launch(
    event_schema, graphql_server, http_api, monkeypatch
):
    """The location's own resources: EnvVars that are set work; a missing one is named."""
    from dagster_code.nrc_integrations import defs

    monkeypatch.setenv("HASURA_GRAPHQL_ENDPOINT", graphql_server.url)
    monkeypatch.setenv("HASURA_GRAPHQL_ADMIN_SECRET", graphql_server.admin_secret)
    monkeypatch.delenv("NRC_USER_SYNC_URL", raising=False)
    assert "NRC_USER_SYNC_URL" in _launch_error(defs, "nrc_integrations_pipeline")
    assert es.get_unprocessed_or_failed_events("USER_SYNC_EVENT") == []  # nothing ran

    monkeypatch.setenv("NRC_USER_SYNC_URL", f"{http_api.url}/users")
    http_api.routes["/users"] = (200, "ok")
    result = _run(defs, "nrc_integrations_pipeline")
    assert result.success, step_failure_messages(result)
    assert _metadata(result, "user_sync_event_handler")["processed"] == 2


def test_mysql_tables_sync_location(mysql_conn, mysql_db, cache_schema, pg_conn, monkeypatch):
    from dagster_code.mysql_tables_sync import defs

    with mysql_conn.cursor() as cur:
        cur.execute("drop table if exists customers, orders")
        cur.execute("create table customers (id int primary key, name varchar(50))")
        cur.execute("insert into customers values (1, 'Åsa'), (2, 'Nils')")
        cur.execute(
            "create table orders (id int primary key, customer_id int, total decimal(10,2))"
        )
        cur.execute("insert into orders values (10, 1, 99.90), (11, 2, 5.00), (12, 1, 0.10)")
    monkeypatch.setenv("MYSQL_HOST", MYSQL_HOST)
    monkeypatch.setenv("MYSQL_SYNC_DATABASE", mysql_db)
    monkeypatch.setenv("MYSQL_SYNC_TABLES", "customers, orders")
    monkeypatch.setenv("MYSQL_SYNC_CACHE_SCHEMA", cache_schema)

    for _ in range(2):  # a rerun replaces the tables
        result = _run(defs, "mysql_tables_sync_pipeline")
        assert result.success, step_failure_messages(result)
    meta = _metadata(result, "mysql_tables_sync_assets")
    assert meta["rows"] == {"customers": 2, "orders": 3}
    assert rows(pg_conn, f"select id, name from {cache_schema}.mysql_customers order by id") == [
        (1, "Åsa"),
        (2, "Nils"),
    ]
    assert str(scalar(pg_conn, f"select sum(total) from {cache_schema}.mysql_orders")) == "105.00"

    monkeypatch.setenv("MYSQL_SYNC_TABLES", "customers,missing")
    failed = _run(defs, "mysql_tables_sync_pipeline")
    assert not failed.success
    assert any(
        "MySQL tables sync failed" in m and "missing: SourceTableNotFoundError" in m
        for m in step_failure_messages(failed)
    )


@pytest.mark.parametrize("missing", ["MYSQL_HOST", "MYSQL_SYNC_DATABASE", "MYSQL_SYNC_TABLES"])
def test_mysql_location_names_a_missing_setting_at_launch(monkeypatch, missing):
    from dagster_code.mysql_tables_sync import defs

    for name in ("MYSQL_HOST", "MYSQL_SYNC_DATABASE", "MYSQL_SYNC_TABLES"):
        monkeypatch.setenv(name, "set")
    monkeypatch.delenv(missing)
    assert missing in _launch_error(defs, "mysql_tables_sync_pipeline")
