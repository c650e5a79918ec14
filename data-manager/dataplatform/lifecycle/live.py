"""After `connector add`/`remove`: have a running platform serve the change, with no restart.

When dagster-init runs (its pid file in the platform's run directory), it is sent SIGUSR1 and
reconciles its servers with code-locations.json (dataplatform.runtime.dagster_init.reconcile):
it starts or stops only the changed location, rewrites the local workspace and has the webserver
re-read it. This waits until each side shows the change, so that the job can be launched when the
command returns:
- dagster-init's status: the new location `ready` (or gone);
- the webserver's GraphQL workspace: the location LOADED (or gone);
- the daemon's report (dataplatform.runtime.dagster_daemon): it loaded the new workspace, so a
  queued run of the new job is dequeued, and its schedules and sensors are evaluated.

With no dagster-init running, nothing happens here: the next `platform start` serves the change.

In container mode (`docker compose exec data-manager dataplatform connector add ...`) there is
no platform.json; DATAPLATFORM_SHARED_WORKSPACE names the workspace dagster-init rewrites on the
volume the webserver and daemon containers read, and the same waits apply: the webserver at
DAGSTER_WEBSERVER_URL, and the daemon's report, which it writes on that volume too
(paths.shared_daemon_dir).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.runtime import paths, processes


@dataclass
class LiveChange:
    ok: bool
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "\n".join(self.lines)


def _json(path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _wait(check: Callable[[], object], timeout: float, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(poll)


def running_supervisor() -> int | None:
    """dagster-init's pid, if one runs that reconciles on SIGUSR1 (older ones would exit on it)."""
    pid = processes.read_live_pid(paths.run_dir() / "dagster-init.pid")
    status = _json(paths.supervisor_status_file())
    if pid is None or status.get("supervisor_pid") != pid or "reconcile" not in status:
        return None
    return pid


def _reconcile(pid: int, timeout: float) -> dict:
    asked_at = time.time()
    os.kill(pid, signal.SIGUSR1)

    def finished() -> dict | None:
        status = _json(paths.supervisor_status_file())
        result = status.get("reconcile") or {}
        if result.get("state") in ("done", "failed") and result.get("read_at", 0) >= asked_at:
            return {**result, "locations": status.get("locations", {})}
        return None

    return _wait(finished, timeout) or {}


def apply_live(present: list[str], absent: list[str], timeout: float = 120.0) -> LiveChange | None:
    """Have the running platform serve `present` and drop `absent`; None if none is running."""
    pid = running_supervisor()
    if pid is None:
        return None
    t0 = time.monotonic()
    result = _reconcile(pid, timeout)
    if not result:
        return LiveChange(False, time.monotonic() - t0, [
            f"live: dagster-init (pid {pid}) did not finish reconciling in {timeout:.0f}s; see "
            f"{paths.log_dir() / 'dagster-init.log'}"])  # fmt: skip
    change = LiveChange(True)
    started = ", ".join(result["started"]) or "nothing"
    stopped = ", ".join(result["stopped"]) or "nothing"
    change.lines.append(
        f"live: dagster-init reconciled in {result['seconds']:.1f}s: started {started}, stopped "
        f"{stopped}, {len(result['unchanged'])} other location(s) untouched"
    )
    for name in present:
        info = result["locations"].get(name, {})
        if info.get("state") != "ready":
            change.ok = False
            change.lines.append(
                f"live: {name} is {info.get('state', 'not served')}: {info.get('message', '')}; "
                f"see {paths.log_dir() / f'code-server-{name}.log'}"
            )
    if result.get("error"):
        change.ok = False
        change.lines.append(f"live: {result['error']}")
    side = _webserver_and_daemon()
    if side is None:
        change.seconds = time.monotonic() - t0
        change.lines.append(
            f"live: dagster-init serves the change after {change.seconds:.1f}s; no webserver is "
            "known here (no local platform, DATAPLATFORM_SHARED_WORKSPACE unset), so the "
            "webserver and daemon show it once they read the new workspace"
        )
        return change
    url, workspace, report, daemon_running = side
    if change.ok:
        change.ok &= _wait_webserver(url, present, absent, timeout, change.lines)
    if change.ok and daemon_running:
        change.ok &= _wait_daemon(workspace, report, present, absent, timeout, change.lines)
    elif change.ok:
        change.lines.append(f"live: no daemon runs (no report at {report}); it reads the new "
                            "workspace when it starts")  # fmt: skip
    change.seconds = time.monotonic() - t0
    verb = "served" if change.ok else "NOT fully served"
    change.lines.append(f"live: the change is {verb} by the running platform after "
                        f"{change.seconds:.1f}s (no restart)")  # fmt: skip
    if not change.ok:
        change.lines.append(
            f"live: the files are written; once the cause is fixed, `kill -USR1 {pid}` "
            "(dagster-init) or a restart serves them"
        )
    return change


def _webserver_and_daemon() -> tuple[str, Path, Path, bool] | None:
    """(webserver url, workspace file, daemon report, whether a daemon runs) to wait on.

    The local platform's, from platform.json; else container mode's, from the settings; else
    None (a bare dagster-init).
    """
    from dataplatform import settings
    from dataplatform.runtime.dagster_daemon import report_file

    state = _json(paths.run_dir() / "platform.json")
    url, workspace = state.get("webserver", {}).get("url"), state.get("workspace")
    if url and workspace:
        from dataplatform.local.platform import live_pid

        return url, Path(workspace), report_file(), bool(live_pid("dagster-daemon"))
    shared = settings.shared_workspace()
    workspace = shared.resolved_shared_workspace()
    if workspace is None:
        return None
    report = paths.shared_daemon_dir(workspace) / "run" / report_file().name
    # Another container's pid cannot be checked; a running daemon reports on its first look.
    return shared.resolved_webserver_url(), workspace, report, report.exists()


def _wait_webserver(url: str, present, absent, timeout: float, lines: list[str]) -> bool:
    from dataplatform.runtime.dagster_graphql import DagsterGraphQL, DagsterGraphQLError

    client = DagsterGraphQL(url)

    def view():
        try:
            locations = client.locations()
        except (OSError, DagsterGraphQLError):
            return None
        ok = all(n in locations and locations[n].loaded for n in present) and not any(
            n in locations for n in absent
        )
        return locations if ok else None

    if _wait(view, timeout, poll=0.3) is None:
        lines.append(f"live: the webserver ({url}) does not show the change yet; reload the "
                     "workspace in the UI (Deployment, Reload all)")  # fmt: skip
        return False
    shown = ", ".join([*(f"{n} LOADED" for n in present), *(f"{n} gone" for n in absent)])
    lines.append(f"live: webserver {url}: {shown}")
    return True


def _wait_daemon(workspace: Path, report: Path, present, absent, timeout: float,
                 lines: list[str]) -> bool:  # fmt: skip
    from dataplatform.runtime.dagster_daemon import workspace_digest

    digest = workspace_digest([workspace])

    def seen() -> bool:
        loaded = _json(report)
        names = loaded.get("locations", {})
        return (
            loaded.get("workspace_sha256") == digest
            and all(names.get(n) == "loaded" for n in present)
            and not any(n in names for n in absent)
        )

    if not _wait(seen, timeout):
        lines.append(f"live: the daemon has not loaded the new workspace yet (see "
                     f"{report}); runs queued for it may fail until it does")  # fmt: skip
        return False
    lines.append("live: the daemon loaded the new workspace")
    return True
