"""The platform's run launcher: Dagster's DefaultRunLauncher plus a run-worker health check.

Dagster's run monitoring (the daemon) ends a run whose worker died, but only when the run
launcher can tell it so. `DefaultRunLauncher` cannot (`supports_check_run_worker_health` is
False), so a run whose code server was killed together with its worker stayed STARTED forever
and held its connector's tag concurrency slot.

`MonitoredRunLauncher` launches exactly as `DefaultRunLauncher` does (the code server starts the
run worker) and answers the daemon's health check:
1. the code server recorded in the run's gRPC tag lists the run among its current executions:
   RUNNING;
2. otherwise, the run worker's process (its pid is on the run's RUN_START event) is still alive
   on this machine: RUNNING. A worker orphaned by a killed code server keeps running and
   finishes its run;
3. otherwise: FAILED, with the reason. The daemon marks the run FAILURE and frees its tag.

When the code server cannot be asked and the worker ran on another host, the answer is RUNNING:
a live run is never failed on a guess, and `max_runtime_seconds` still bounds it.

It uses Dagster internals (the gRPC tag, the server's GetCurrentRuns call, the launcher's client
helper), wrapped in dataplatform.runtime.dagster_internals: dagster is pinned exactly and
`check_dagster_version` refuses another release; tests/dataplatform/runtime/test_run_launcher.py
fails when those internals change.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from dagster import DagsterEventType, DefaultRunLauncher

from dataplatform.runtime.dagster_internals import (
    CheckRunHealthResult,
    WorkerStatus,
    check_dagster_version,
    current_runs,
    registered_instance,
    run_code_server,
)

if TYPE_CHECKING:
    from dagster import DagsterRun


def _local_addresses() -> set[str]:
    names = {"localhost", "127.0.0.1", "::1", "0.0.0.0", socket.gethostname()}
    try:
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    return names


def _is_local(host: str | None) -> bool:
    return bool(host) and (host.startswith("127.") or host in _local_addresses())


def _worker_alive(pid: int, started_at: float) -> bool:
    """The pid is alive and is the worker (created no later than its RUN_START), not a reuse."""
    import psutil

    try:
        process = psutil.Process(pid)
        return (
            process.is_running()
            and process.status() != psutil.STATUS_ZOMBIE
            and (process.create_time() <= started_at + 1.0)
        )
    except psutil.Error:
        return False


class MonitoredRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers the daemon's run monitoring can check."""

    def __init__(self, inst_data=None):
        check_dagster_version()
        super().__init__(inst_data=inst_data)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def _worker_of(self, run_id: str) -> tuple[int, float] | None:
        """(pid, timestamp) of the process that emitted the run's RUN_START event."""
        records = (
            registered_instance(self)
            .get_records_for_run(run_id, of_type=DagsterEventType.RUN_START, limit=1)
            .records
        )
        if not records:
            return None
        entry = records[0].event_log_entry
        pid = entry.dagster_event.pid if entry.dagster_event else None
        return (pid, entry.timestamp) if pid else None

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        client = run_code_server(self, run.run_id)
        server_answered = False
        if client is not None:
            try:
                if run.run_id in current_runs(client):
                    return CheckRunHealthResult(WorkerStatus.RUNNING)
                server_answered = True
            except Exception:  # unreachable or restarting: decide from the worker's process
                server_answered = False
        host = client.host if client is not None else None
        worker = self._worker_of(run.run_id)
        if worker is None:
            # STARTED but no RUN_START yet: the worker is still starting (start timeout covers it).
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        pid, started_at = worker
        if _is_local(host):
            if _worker_alive(pid, started_at):
                return CheckRunHealthResult(WorkerStatus.RUNNING)
            where = f"its code server at {host}:{client.port}" if client else "no code server"
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"the run worker (pid {pid}) is gone and {where} does not run it",
            )
        if server_answered:
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"the code server at {host}:{client.port} does not run it (restarted or replaced)",
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING)
