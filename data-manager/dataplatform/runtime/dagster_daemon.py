"""dagster-daemon that re-reads its workspace as soon as the workspace file changes.

    python -m dataplatform.runtime.dagster_daemon run -w workspace.yaml   (local platform start)

Why: Dagster 1.13's daemon controller refreshes its workspace only when
`RELOAD_WORKSPACE_INTERVAL` (60 s) has passed, checked every `THREAD_CHECK_INTERVAL` (5 s), in
`DagsterDaemonController.check_workspace_freshness` (dagster/_daemon/controller.py). Every daemon
thread (the run queue, schedules, sensors, run monitoring) reads that one shared workspace. So
for up to a minute after a live `connector add` the daemon does not know the new location: a
queued run of its job fails at dequeue with DagsterCodeLocationNotFoundError (which the queue's
user-code retries do not cover), and its schedules and sensors are not evaluated.

Here the freshness check also refreshes when a workspace file's content changed, and runs every
second. A refresh is Dagster's own `refresh_workspace()`: snapshots are fetched again from the
running servers; their code is not reloaded, so no server is restarted. After each refresh the
locations it loaded go to <platform dir>/run/dagster-daemon.workspace.json, so `connector add`
can wait until the daemon sees the new location rather than guess.

Its per-location code-server watch runs at DAGSTER_GRPC_WATCH_SECONDS (runtime/grpc_watch.py).
Everything else is the stock command (`dagster._daemon.cli.main`). Private Dagster API used:
`DagsterDaemonController.check_workspace_freshness` and its `_workspace_process_context`, the
module constant `THREAD_CHECK_INTERVAL`; `check_dagster_version` guards the release, and
tests/dataplatform/runtime/test_dagster_daemon.py fails when they change.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

from dataplatform.runtime import paths

CHECK_INTERVAL = 1  # seconds between the controller's checks (Dagster's default: 5)


def report_file() -> Path:
    return paths.run_dir() / "dagster-daemon.workspace.json"


def workspace_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        try:
            digest.update(path.read_bytes())
        except FileNotFoundError:
            digest.update(b"\0missing")
    return digest.hexdigest()


def workspace_files(argv: list[str]) -> list[Path]:
    files = []
    for i, arg in enumerate(argv):
        if arg in ("-w", "--workspace") and i + 1 < len(argv):
            files.append(Path(argv[i + 1]))
        elif arg.startswith("--workspace="):
            files.append(Path(arg.split("=", 1)[1]))
    return files


def _write_report(controller, digest: str) -> None:
    entries = controller._workspace_process_context.get_current_workspace().code_location_entries
    report = {
        "pid": os.getpid(),
        "workspace_sha256": digest,
        "refreshed_at": time.time(),
        "locations": {
            name: "error" if entry.load_error is not None else "loaded"
            for name, entry in entries.items()
        },
    }
    from dataplatform.runtime.processes import write_atomic

    write_atomic(report_file(), json.dumps(report, indent=2, sort_keys=True) + "\n")


def install_workspace_watch(files: list[Path]) -> None:
    from dagster._daemon import controller as daemon_controller

    original = daemon_controller.DagsterDaemonController.check_workspace_freshness
    seen = {"digest": workspace_digest(files), "reported": False}

    def check_workspace_freshness(self, last_workspace_update_time: float) -> float:
        digest = workspace_digest(files)
        changed = digest != seen["digest"]
        if changed:
            # Older than any interval: the stock check refreshes now.
            last_workspace_update_time = 0.0
        updated = original(self, last_workspace_update_time)
        if updated != last_workspace_update_time or not seen["reported"]:
            seen["digest"] = digest  # refreshed (or first look): this is what the daemon holds
            seen["reported"] = True
            try:
                _write_report(self, digest)
            except OSError:
                pass  # a report we cannot write must never stop the daemon
        return updated

    daemon_controller.DagsterDaemonController.check_workspace_freshness = check_workspace_freshness
    daemon_controller.THREAD_CHECK_INTERVAL = CHECK_INTERVAL


def main(argv: list[str]) -> None:
    from dagster._daemon.cli import main as daemon_main

    from dataplatform.runtime.run_launcher import check_dagster_version

    check_dagster_version()
    install_workspace_watch(workspace_files(argv))
    from dataplatform.runtime import grpc_watch

    grpc_watch.apply()  # its per-location code-server watch, as in the webserver
    sys.argv = ["dagster-daemon", *argv]
    daemon_main()


if __name__ == "__main__":
    main(sys.argv[1:])
