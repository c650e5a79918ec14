"""Sync bounds on the platform, and dbt_poc before a connector's first sync.

The sync-level behaviour (endless paginator, record limit, a source that never answers, a
connector process that crashes or hangs) is tested fast in
tests/pyairbyte/utils/postgres_copy_cache/test_sync_limits.py. Here:

- dbt_poc_pipeline with a connector whose cache table does not exist yet (added, never synced):
  it succeeds and warns, naming the source;
- a source that never answers, on the real local platform: the run ends FAILURE at
  SYNC_MAX_SECONDS with the limit's message, and frees the connector's tag, so the run queued
  behind it proceeds and succeeds.
"""

from __future__ import annotations

import os

import psycopg2
import pytest
from dagster import DagsterInstance

from tests.helpers import scalar, step_failure_messages

# --- dbt_poc before a connector's first sync ------------------------------------------------------


@pytest.fixture
def users_table_missing(pg, pg_conn):
    """pyairbyte_cache.users as if its connector had never synced (put back afterwards)."""
    exists = scalar(pg_conn, "select to_regclass('pyairbyte_cache.users') is not null")
    with pg_conn.cursor() as cur:
        if exists:
            cur.execute("ALTER TABLE pyairbyte_cache.users RENAME TO users_hidden_by_test")
    yield
    with pg_conn.cursor() as cur:
        if exists:
            cur.execute("ALTER TABLE pyairbyte_cache.users_hidden_by_test RENAME TO users")


@pytest.mark.slow
def test_dbt_poc_skips_the_sources_of_a_connector_that_never_synced(
    pg, pg_conn, sample_api, users_table_missing
):
    from dagster_code.dbt_poc import defs
    from dagster_code.sample_product_sync import defs as product_defs

    instance = DagsterInstance.ephemeral()
    if not scalar(pg_conn, "select to_regclass('pyairbyte_cache.products') is not null"):
        product_job = product_defs.resolve_job_def("sample_product_sync_pipeline")
        assert product_job.execute_in_process(instance=instance).success

    result = defs.resolve_job_def("dbt_poc_pipeline").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert result.success, step_failure_messages(result)

    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level >= 30 and "does not exist yet" in (entry.user_message or "")
    ]
    assert len(warnings) == 1, warnings
    assert "dbt source faker.users" in warnings[0]
    assert "pyairbyte_cache.users" in warnings[0]
    materialized = {
        event.event_specific_data.materialization.asset_key.to_user_string()
        for event in result.get_asset_materialization_events()
    }
    # dbt_poc's cross-connector model reads the unsynced connector too: left for later.
    assert "connector_row_counts" not in materialized


# --- a source that never answers, on the platform ---------------------------------------------

LIMIT_SECONDS = 45  # above a normal sync here, which imports airbyte (8-15 s) within it


@pytest.fixture(scope="module")
def bounded_platform(pg, tmp_path_factory):
    from tests.reliability.conftest import start_fault_platform

    env = {**os.environ, "SYNC_MAX_SECONDS": str(LIMIT_SECONDS), "SYNC_STOP_GRACE_SECONDS": "2"}
    with start_fault_platform(tmp_path_factory.mktemp("bounded_platform"), env=env) as p:
        yield p


def _step_failures(pg, run_id: str) -> str:
    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select event from event_logs where run_id = %s "
                "and dagster_event_type = 'STEP_FAILURE'",
                (run_id,),
            )
            return "\n".join(row[0] for row in cur.fetchall())
    finally:
        conn.close()


@pytest.mark.platform
@pytest.mark.slow
def test_hanging_source_times_out_and_frees_the_connector_tag(bounded_platform, pg, pg_conn):
    p = bounded_platform
    p.api.delay_seconds = 600  # the source never answers
    hung = p.launch()
    queued = p.launch()  # same connector: waits for the tag
    status, waited = p.wait_for_status(hung, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=180)
    p.api.delay_seconds = 0
    print(f"hanging source: run ended {status} {waited:.1f} s after launch")
    assert status == "FAILURE"
    assert f"past its limit of {LIMIT_SECONDS} s (SYNC_MAX_SECONDS)" in _step_failures(pg, hung)

    status, waited = p.wait_for_status(queued, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=240)
    assert status == "SUCCESS"
    first, second = p.client.run(hung), p.client.run(queued)
    assert second["startTime"] >= first["endTime"]
    print(f"queued run: started {second['startTime'] - first['endTime']:.1f} s after the hung one")
    assert scalar(pg_conn, "select count(*) from pyairbyte_cache.products") == 30
    duplicates = "select count(*) - count(distinct id) from pyairbyte_cache.products"
    assert scalar(pg_conn, duplicates) == 0
