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
Everything else is the stock `dagster-daemon` command. The controller's check, its interval and
its workspace are private Dagster API, wrapped in dataplatform.runtime.dagster_internals.
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
    from dataplatform.runtime.dagster_internals import daemon_locations

    report = {
        "pid": os.getpid(),
        "workspace_sha256": digest,
        "refreshed_at": time.time(),
        "locations": {
            name: "loaded" if loaded else "error"
            for name, loaded in daemon_locations(controller).items()
        },
    }
    from dataplatform.runtime.processes import write_atomic

    write_atomic(report_file(), json.dumps(report, indent=2, sort_keys=True) + "\n")


def install_workspace_watch(files: list[Path]) -> None:
    from dataplatform.runtime import dagster_internals

    seen = {"digest": workspace_digest(files), "reported": False}

    def check(last_workspace_update_time: float, stock_check, controller) -> float:
        digest = workspace_digest(files)
        changed = digest != seen["digest"]
        if changed:
            # Older than any interval: the stock check refreshes now.
            last_workspace_update_time = 0.0
        updated = stock_check(last_workspace_update_time)
        if updated != last_workspace_update_time or not seen["reported"]:
            seen["digest"] = digest  # refreshed (or first look): this is what the daemon holds
            seen["reported"] = True
            try:
                _write_report(controller, digest)
            except OSError:
                pass  # a report we cannot write must never stop the daemon
        return updated

    dagster_internals.watch_daemon_workspace(check, CHECK_INTERVAL)


def main(argv: list[str]) -> None:
    from dataplatform.runtime import dagster_internals, grpc_watch

    dagster_internals.check_dagster_version()
    install_workspace_watch(workspace_files(argv))
    grpc_watch.apply()  # its per-location code-server watch, as in the webserver
    sys.argv = ["dagster-daemon", *argv]
    dagster_internals.run_daemon()


if __name__ == "__main__":
    main(sys.argv[1:])
