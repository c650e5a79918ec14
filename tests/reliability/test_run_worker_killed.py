"""A run worker killed in the middle of a sync: together with its code server, or alone.

Before run monitoring, such a run stayed STARTED forever and held the connector's tag
concurrency slot, so the next run of that connector queued forever too.
"""

from __future__ import annotations

import os
import signal
import time

import psutil
import psycopg2
import pytest

from tests.helpers import scalar, wait_until

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


def _launch_slow_sync(p, pg) -> str:
    """A run whose source answers after 20 s, returned once its sync is reading (STARTED)."""
    # Alone on the connector: no earlier run (nor a daemon retry of one) holds its slot.
    wait_until(lambda: _unfinished_runs(pg) == 0, 300, "the earlier runs to finish")
    p.api.delay_seconds = 20
    requests_before = len(p.api.requests)
    run_id = p.launch()
    wait_until(lambda: p.status(run_id) == "STARTED", 120, "the run to start")
    wait_until(lambda: len(p.api.requests) > requests_before, 120, "its sync to read")
    return run_id


def test_run_whose_worker_dies_ends_failure_and_frees_the_connector(fault_platform, pg):
    p = fault_platform
    first = p.launch()
    status, _ = p.wait_for_status(first, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=300)
    assert status == "SUCCESS"
    assert _cache_rows(pg) == PRODUCTS

    # A slow source, so the sync is still reading when its process group is killed.
    doomed = _launch_slow_sync(p, pg)
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


def _unfinished_runs(pg) -> int:
    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    unfinished = "('QUEUED', 'NOT_STARTED', 'STARTING', 'STARTED', 'CANCELING')"
    try:
        return scalar(conn, f"select count(*) from runs where status in {unfinished}")
    finally:
        conn.close()


def _run_events_text(pg, run_id: str) -> str:
    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    try:
        with conn.cursor() as cursor:
            cursor.execute("select event from event_logs where run_id = %s order by id", (run_id,))
            return "\n".join(row[0] for row in cursor.fetchall())
    finally:
        conn.close()


def _worker_pid(pg, run_id: str) -> int | None:
    """The pid on the run's RUN_START event (stored under its old name): the run worker's."""
    import json

    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    try:
        event = scalar(
            conn,
            "select event from event_logs where run_id = %s "
            "and dagster_event_type = 'PIPELINE_START'",
            (run_id,),
        )
    finally:
        conn.close()
    return json.loads(event)["dagster_event"]["pid"] if event else None


def test_a_warm_run_worker_killed_alone_ends_failure(fault_platform, pg):
    """Fork mode: the worker is a fork of its code server's run forkserver. Killed alone, the
    run ends FAILURE; the code server and its run forkserver keep serving the next run."""
    p = fault_platform
    p.wait_until_loaded()
    server = p.code_server_pid()
    doomed = _launch_slow_sync(p, pg)
    worker = _worker_pid(pg, doomed)
    assert worker is not None
    run_forkserver = psutil.Process(worker).ppid()
    assert psutil.Process(run_forkserver).ppid() == server  # a warm run
    os.kill(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    p.api.delay_seconds = 0

    status, _ = p.wait_for_status(doomed, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=90)
    assert status == "FAILURE", status
    assert time.monotonic() - killed_at <= 60
    # Its code server saw the worker die (as it does for a spawned one) and said how.
    assert f"Run execution process for {doomed} was terminated by signal 9 (SIGKILL)" in (
        _run_events_text(pg, doomed)
    )
    assert _cache_rows(pg) == PRODUCTS

    assert p.code_server_pid() == server and psutil.pid_exists(run_forkserver)
    after = p.launch()
    status, _ = p.wait_for_status(after, {"SUCCESS", "FAILURE", "CANCELED"}, timeout=300)
    assert status == "SUCCESS", _run_failure_message(pg, after)
