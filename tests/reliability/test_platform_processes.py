"""Faults of the platform's own processes, on one platform: a taken port, a killed daemon, a stop.

The platform serves sample_product_sync, and dbt_poc on a port that another process holds
from before the start (so dbt_poc never starts, and costs nothing). Tests run in file order:
the last one stops and restarts the platform.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dataplatform.runtime.processes import read_live_pid
from tests.helpers import wait_until
from tests.ports import free_code_location_ports
from tests.reliability.conftest import FINISHED, LOCATION, start_fault_platform

pytestmark = [pytest.mark.platform, pytest.mark.slow]

TAKEN_LOCATION = "dbt_poc"
PRODUCTS = 30

# One line, so its command line (which the message quotes) is one line too.
_HOLD_PORT = (
    "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); "
    "s.listen(); print('listening', flush=True); time.sleep(3600)"
)

_RUNS_BY_PARENT = """
query Retries($parent: String!) {
  runsOrError(filter: {tags: [{key: "dagster/parent_run_id", value: $parent}]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""


@pytest.fixture(scope="module")
def port_holder():
    """Another process (not a Dagster server) listening on the port dbt_poc is configured for."""
    (port,) = free_code_location_ports(1)
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_PORT, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "listening"
    yield port, proc
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def processes_platform(pg, port_holder, tmp_path_factory):
    taken, _ = port_holder
    (free,) = free_code_location_ports(1)
    tmp = tmp_path_factory.mktemp("processes_platform")
    ports = {LOCATION: free, TAKEN_LOCATION: taken}
    with start_fault_platform(tmp, ports=ports, expect_all_loaded=False) as p:
        yield p


def _pid(p, component: str) -> int | None:
    return read_live_pid(p.platform_dir / "run" / f"{component}.pid")


def test_a_taken_port_is_named_with_its_holder_and_the_other_location_loads(
    processes_platform, port_holder
):
    taken, holder = port_holder
    out = processes_platform.started.stdout
    assert processes_platform.started.returncode == 1, out  # not every location loaded
    assert f"{LOCATION}: loaded" in out, out
    line = next(x for x in out.splitlines() if x.strip().startswith(f"{TAKEN_LOCATION}:"))
    assert "NOT loaded (port_in_use)" in line, line
    assert f"port {taken} on 127.0.0.1 is already in use by pid {holder.pid}" in line, line
    assert "fix: free the port" in line, line
    assert "DagsterUserCodeUnreachableError" not in out


def test_a_killed_daemon_is_restarted_and_the_queued_runs_succeed(processes_platform):
    p = processes_platform
    daemon = _pid(p, "dagster-daemon")
    assert daemon and _pid(p, "dagster-daemon-watchdog")
    os.kill(daemon, signal.SIGKILL)
    killed_at = time.monotonic()
    # Queued while no daemon runs (its watchdog waits 1 s before the restart).
    runs = [p.launch(), p.launch()]
    assert {p.status(r) for r in runs} == {"QUEUED"}

    restarted = wait_until(
        lambda: (pid := _pid(p, "dagster-daemon")) and pid != daemon and pid,
        timeout=30,
        what="daemon restarted",
    )
    restart_seconds = time.monotonic() - killed_at
    daemon_log = p.platform_dir / "logs" / "dagster-daemon.log"
    # The watchdog writes the pid file, then its log line: wait for the line.
    log = wait_until(
        lambda: f"restarted (pid {restarted})" in (text := daemon_log.read_text()) and text,
        timeout=10,
        what="the watchdog's restart line",
    )
    assert f"[watchdog] dagster-daemon (pid {daemon} was killed by signal 9" in log

    for run_id in runs:
        status, _ = p.wait_for_status(run_id, FINISHED, timeout=240)
        assert status == "SUCCESS", (run_id, status)
    print(
        f"\ndaemon kill -9: restarted after {restart_seconds:.1f} s; 2 queued runs SUCCESS "
        f"{time.monotonic() - killed_at:.0f} s after the kill"
    )


def _run_failure_message(p, run_id: str) -> str:
    query = """
    query Events($runId: ID!) {
      logsForRun(runId: $runId) {
        ... on EventConnection { events { __typename ... on MessageEvent { message } } }
      }
    }"""
    events = p.client.query(query, {"runId": run_id})["logsForRun"]["events"]
    return "\n".join(e["message"] for e in events if e["__typename"] == "RunFailureEvent")


def test_stop_mid_run_then_start_ends_the_run_and_retries_it(processes_platform):
    p = processes_platform
    p.api.delay_seconds = 15  # the sync is still reading when the platform stops
    requests_before = len(p.api.requests)
    run_id = p.launch()
    wait_until(lambda: len(p.api.requests) > requests_before, timeout=120, what="sync reading")
    assert p.status(run_id) == "STARTED"

    stopped = p.script("stop.sh")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    leftovers = {
        f.stem: pid for f in (p.platform_dir / "run").glob("*.pid") if (pid := _pid(p, f.stem))
    }
    assert leftovers == {}, leftovers

    p.api.delay_seconds = 0
    t0 = time.monotonic()
    started = p.script("start.sh", timeout=600)
    assert f"{LOCATION}: loaded" in started.stdout, started.stdout + started.stderr
    status, _ = p.wait_for_status(run_id, FINISHED, timeout=120)
    assert status == "FAILURE", status
    # The worker records its own interruption when it finishes cleaning up within the code
    # server's 10 s stop grace; on a loaded machine it is SIGKILLed first, and run monitoring
    # then names the worker that is gone. Either way the failure says why, and it is retried.
    message = _run_failure_message(p, run_id)
    assert "Execution was interrupted unexpectedly" in message or (
        "is gone and its code server at 127.0.0.1:" in message and "does not run it" in message
    ), message

    def retry():
        found = p.client.query(_RUNS_BY_PARENT, {"parent": run_id})["runsOrError"]["results"]
        return found[0] if found else None

    first = wait_until(retry, timeout=120, what=f"a retry of run {run_id}")
    tags = {t["key"]: t["value"] for t in first["tags"]}
    assert tags["dagster/root_run_id"] == run_id
    assert tags["dagster/retry_number"] == "1"
    status, _ = p.wait_for_status(first["runId"], FINISHED, timeout=240)
    assert status == "SUCCESS", status
    print(f"\nstop mid-run + start: retry SUCCESS {time.monotonic() - t0:.0f} s after start.sh")
