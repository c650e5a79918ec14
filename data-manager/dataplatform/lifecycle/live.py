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
In a container (no platform.json) only dagster-init's part runs; the webserver and daemon
containers read their own workspace file.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
    state = _json(paths.run_dir() / "platform.json")
    url = state.get("webserver", {}).get("url")
    if url and change.ok:
        change.ok &= _wait_webserver(url, present, absent, timeout, change.lines)
    if state.get("workspace") and change.ok:
        change.ok &= _wait_daemon(state["workspace"], present, absent, timeout, change.lines)
    change.seconds = time.monotonic() - t0
    if not url:
        # A container: the webserver and daemon read their own copy of the workspace file.
        change.lines.append(
            f"live: dagster-init serves the change after {change.seconds:.1f}s; no local "
            "webserver is recorded here (container mode), so restart the webserver and daemon "
            "with the new platform/workspace.yaml to show it"
        )
        return change
    verb = "served" if change.ok else "NOT fully served"
    change.lines.append(f"live: the change is {verb} by the running platform after "
                        f"{change.seconds:.1f}s (no restart)")  # fmt: skip
    if not change.ok:
        change.lines.append(
            f"live: the files are written; once the cause is fixed, `kill -USR1 {pid}` "
            "(dagster-init) or a restart serves them"
        )
    return change


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


def _wait_daemon(workspace: str, present, absent, timeout: float, lines: list[str]) -> bool:
    from pathlib import Path

    from dataplatform.local.platform import live_pid
    from dataplatform.runtime.dagster_daemon import report_file, workspace_digest

    if not live_pid("dagster-daemon"):
        return True  # nothing to tell; the daemon reads the new workspace when it starts
    digest = workspace_digest([Path(workspace)])

    def seen() -> bool:
        report = _json(report_file())
        names = report.get("locations", {})
        return (
            report.get("workspace_sha256") == digest
            and all(names.get(n) == "loaded" for n in present)
            and not any(n in names for n in absent)
        )

    if not _wait(seen, timeout):
        lines.append(f"live: the daemon has not loaded the new workspace yet (see "
                     f"{report_file()}); runs queued for it may fail until it does")  # fmt: skip
        return False
    lines.append("live: the daemon loaded the new workspace")
    return True
