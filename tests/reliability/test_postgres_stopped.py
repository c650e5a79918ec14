"""The platform's own PostgreSQL stopped in the middle of a sync (pg_ctl stop), then started.

The session's PostgreSQL cannot be stopped, so this platform runs without POSTGRES_HOST and
starts its private cluster (local/postgres.py) on a free LOCAL_PG_PORT. Run storage, event log
and the cache all live in it, so every process loses its database at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from dataplatform.local.postgres import LocalPostgres
from pyairbyte import settings
from tests.helpers import rows, scalar
from tests.ports import free_port
from tests.reliability.conftest import FINISHED, start_fault_platform

pytestmark = [pytest.mark.platform, pytest.mark.slow]

PRODUCTS = 30
DBNAME = "dataplatform"


@pytest.fixture(scope="module")
def private_pg_platform(project_env):
    # Not under pytest's tmp dir: that is root's, mode 0700, and the cluster runs as `postgres`.
    base = settings.project_dir() / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="pg-fault-", dir=base))
    tmp.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTGRES_")}
    env["LOCAL_PG_PORT"] = str(free_port())
    try:
        with start_fault_platform(tmp, env=env) as p:
            p.cluster = LocalPostgres(
                tmp / "platform" / "postgres" / "data", int(env["LOCAL_PG_PORT"])
            )
            yield p
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _connect(cluster: LocalPostgres):
    return psycopg2.connect(**cluster.connect_kwargs(DBNAME), connect_timeout=5)


def _cache_tables(cluster: LocalPostgres) -> list[str]:
    conn = _connect(cluster)
    try:
        return [
            r[0]
            for r in rows(
                conn,
                "select table_name from information_schema.tables "
                "where table_schema = 'pyairbyte_cache' and table_name like 'products%%'",
            )
        ]
    finally:
        conn.close()


def _failure_messages(cluster: LocalPostgres, run_id: str) -> str:
    conn = _connect(cluster)
    try:
        found = rows(
            conn,
            "select event from event_logs where run_id = %s and dagster_event_type in "
            "('STEP_FAILURE', 'PIPELINE_FAILURE') order by id",
            (run_id,),
        )
        return "\n".join(r[0] for r in found)
    finally:
        conn.close()


def _quiet_for(api, seconds: float, timeout: float) -> None:
    """Wait until the API has had no request for `seconds`: the source finished reading."""
    deadline = time.monotonic() + timeout
    last = (len(api.requests), time.monotonic())
    while time.monotonic() < deadline:
        if len(api.requests) != last[0]:
            last = (len(api.requests), time.monotonic())
        elif time.monotonic() - last[1] >= seconds:
            return
        time.sleep(0.2)
    raise AssertionError("the source kept reading")


def test_postgres_stopped_mid_sync_fails_the_run_cleanly_and_the_next_run_succeeds(
    private_pg_platform,
):
    p = private_pg_platform
    cluster = p.cluster
    p.api.delay_seconds = 5
    before = len(p.api.requests)
    run_id = p.launch()
    deadline = time.monotonic() + 120
    while len(p.api.requests) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert p.status(run_id) == "STARTED"

    cluster.stop()  # pg_ctl stop -m fast, as the cluster's OS user
    stopped_at = time.monotonic()
    assert not cluster.is_running()
    # The cache load needs the database the moment the source is done reading.
    _quiet_for(p.api, seconds=10, timeout=120)
    p.api.delay_seconds = 0
    cluster.start()
    down_for = time.monotonic() - stopped_at

    # The webserver keeps one pooled connection per storage (dagster-webserver's
    # optimize_for_webserver), with no pre-ping: the first query on each stale one fails with
    # HTTP 500, and SQLAlchemy then drops it, so the next request reconnects.
    answers = []
    while answers[-3:] != [200, 200, 200] and len(answers) < 12:
        try:
            p.status(run_id)  # run storage and event log (step stats)
            answers.append(200)
        except requests.HTTPError as exc:
            answers.append(exc.response.status_code)
    print(f"\nwebserver answers after PostgreSQL restart: {answers}")
    assert answers[-3:] == [200, 200, 200], answers
    assert answers.count(500) <= 3, answers  # at most once per storage

    status, waited = p.wait_for_status(run_id, FINISHED, timeout=180)
    print(f"run {status} {waited:.0f} s after PostgreSQL came back (down {down_for:.0f} s)")
    assert status == "FAILURE", status
    # The step's own failure, naming the connector and the server it lost (the event text is
    # JSON, so the server's quotes are escaped).
    messages = _failure_messages(cluster, run_id)
    assert (
        "PyAirbyte sync of sample-connector failed: lost the connection to the cache's "
        f"PostgreSQL database {DBNAME} on 127.0.0.1:{cluster.port}"
    ) in messages
    assert "OperationalError" in messages
    assert f'connection to server at \\"127.0.0.1\\", port {cluster.port} failed' in messages
    assert _cache_tables(cluster) == []  # no partial table, no leftover loading table

    again = p.launch()
    status, took = p.wait_for_status(again, FINISHED, timeout=240)
    assert status == "SUCCESS", status
    conn = _connect(cluster)
    try:
        assert scalar(conn, "select count(*) from pyairbyte_cache.products") == PRODUCTS
    finally:
        conn.close()
    print(f"next run SUCCESS in {took:.0f} s")
