"""A code server killed together with the run worker it started, in the middle of a sync.

Before run monitoring, such a run stayed STARTED forever and held the connector's tag
concurrency slot, so the next run of that connector queued forever too.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg2
import pytest

from tests.helpers import scalar

pytestmark = [pytest.mark.platform, pytest.mark.slow]

PRODUCTS = 30


def _cache_rows(pg) -> int:
    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    try:
        return scalar(conn, "select count(*) from pyairbyte_cache.products")
    finally:
        conn.close()


def _run_failure_message(pg, run_id: str) -> str:
    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    try:
        return (
            scalar(
                conn,
                "select event from event_logs where run_id = %s "
                "and dagster_event_type = 'PIPELINE_FAILURE'",
                (run_id,),
            )
            or ""
        )
    finally:
        conn.close()


def test_run_whose_worker_dies_ends_failure_and_frees_the_connector(fault_platform, pg):
    p = fault_platform
    first = p.launch()
    status, _ = p.wait_for_status(first, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=300)
    assert status == "SUCCESS"
    assert _cache_rows(pg) == PRODUCTS

    # A slow source, so the sync is still reading when its process group is killed.
    p.api.delay_seconds = 20
    requests_before = len(p.api.requests)
    doomed = p.launch()
    deadline = time.monotonic() + 120
    while len(p.api.requests) == requests_before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert p.status(doomed) == "STARTED"
    # Queued behind the first: same connector, so the tag limit holds it back.
    waiting = p.launch()
    server = p.code_server_pid()
    os.killpg(os.getpgid(server), signal.SIGKILL)  # the code server and its run worker
    killed_at = time.monotonic()
    p.api.delay_seconds = 0

    status, _ = p.wait_for_status(doomed, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=90)
    failed_after = time.monotonic() - killed_at
    assert status == "FAILURE", status
    assert failed_after <= 60, f"FAILURE only after {failed_after:.0f} s"
    # The reason is in the run's events, and the cache kept the last successful sync.
    assert "the run worker (pid" in _run_failure_message(pg, doomed)
    assert _cache_rows(pg) == PRODUCTS

    # The supervisor restarted the code server; the queued run got the connector's slot.
    p.wait_until_loaded()
    assert p.code_server_pid() != server
    status, _ = p.wait_for_status(waiting, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=300)
    assert status == "SUCCESS", _run_failure_message(pg, waiting)
    assert _cache_rows(pg) == PRODUCTS
