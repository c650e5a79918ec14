"""Live changes: bring the running servers in line with code-locations.json, touching no other.

    kill -USR1 $(cat <platform dir>/run/dagster-init.pid)    # or `dataplatform connector add`

On SIGUSR1 the supervisor re-reads the file and compares it with what it serves (`plan`): a new
enabled entry gets a server, a removed or disabled one is stopped, an entry whose module or port
changed is restarted, and every other server is left alone (same pid, runs untouched). Once the
new servers answer (or are reported), the webserver and daemon are told:

1. the local workspace file (platform.json's `workspace`, hosts 127.0.0.1) is regenerated from
   the file, as `platform start` writes it;
2. the webserver's GraphQL `reloadWorkspace` re-reads it. That mutation also sends ReloadCode to
   every listed server, which in fork mode would re-fork each one; while it runs the supervisor
   declines those reloads (the servers keep their pids and answer with their current code);
3. the daemon re-reads the workspace by itself: Dagster 1.13's daemon controller refreshes its
   workspace only every 60 s (`RELOAD_WORKSPACE_INTERVAL` in dagster/_daemon/controller.py,
   checked every 5 s), and until then a queued run of a new location fails with
   DagsterCodeLocationNotFoundError, and its schedules and sensors are not evaluated. The local
   platform therefore runs the daemon through dataplatform.runtime.dagster_daemon, which
   refreshes as soon as the workspace file changes and reports what it loaded.

In container mode (no platform.json; DATAPLATFORM_SHARED_WORKSPACE set, as compose does) the
same steps run from inside the data-manager container: step 1 writes the shared workspace (hosts
from code-locations.json, e.g. data-manager, as in the committed platform/workspace.yaml) on the
volume the webserver and daemon containers read it from, and step 2 calls reloadWorkspace on
DAGSTER_WEBSERVER_URL (compose: http://dagster-webserver:3030). dagster-init also writes that
file when it starts (`write_shared_workspace`), so a fresh volume, or one left by an image with
another code-locations.json, holds this image's entries before the webserver and daemon start.

With neither (a bare supervisor) steps 1-2 are skipped: the servers are reconciled, and the
status file says so. Progress and the outcome are in the status file's `reconcile` section
(`read_at` lets a caller tell a reconcile it asked for from an older one).
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.runtime import paths
from dataplatform.runtime.code_locations import (
    CodeLocation,
    CodeLocationsError,
    Finding,
    load_document,
    read_code_locations,
    workspace_config,
)

log = logging.getLogger("dagster-init")


def select_locations(
    source: Path, host_filter: str | None, quiet: bool = False
) -> tuple[list[CodeLocation], list[Finding]]:
    """The entries this supervisor serves (valid, enabled, on its host), and the errors to report.

    Raises CodeLocationsError when the file as a whole cannot be read.
    """
    # A package created since we last looked would be missed by the import system's cached
    # directory listings.
    importlib.invalidate_caches()
    locations, findings = read_code_locations(source)
    say = log.debug if quiet else log.info
    if not quiet:
        for warning in (f for f in findings if f.severity == "warning"):
            log.warning("%s", warning)
    errors = [f for f in findings if f.severity == "error"]
    active = [loc for loc in locations if loc.enabled]
    for loc in locations:
        if not loc.enabled:
            say("location %s: disabled in %s, not started", loc.name, source)
    if host_filter is not None:
        elsewhere = {loc.name for loc in locations if loc.host != host_filter}
        for loc in active:
            if loc.name in elsewhere:
                say("location %s: served by host %s, not %s", loc.name, loc.host, host_filter)
        active = [loc for loc in active if loc.name not in elsewhere]
        errors = [f for f in errors if f.location_name not in elsewhere]
    return active, errors


@dataclass
class Plan:
    start: list[CodeLocation] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.start and not self.stop


def plan(current: dict[str, CodeLocation], wanted: list[CodeLocation]) -> Plan:
    """What to start and stop so that `current` (name -> served entry) becomes `wanted`.

    Only what a server is started with (module, port) counts as a change: a changed description
    or metadata leaves the server running. A changed entry is stopped, then started afresh.
    """
    out = Plan()
    wanted_by_name = {loc.name: loc for loc in wanted}
    for name, served in current.items():
        new = wanted_by_name.get(name)
        if new is None or (new.module, new.port) != (served.module, served.port):
            out.stop.append(name)
        else:
            out.keep.append(name)
    out.start = [loc for loc in wanted if loc.name not in out.keep]
    return out


def _enabled_entries(source: Path):
    # Every enabled entry, as `platform start` writes it (modules are dagster-init's to check);
    # with a host filter too, since the workspace lists every entry at its host.
    locations, _ = read_code_locations(source, check_modules=False)
    return [loc for loc in locations if loc.enabled], workspace_config(load_document(source))


def write_shared_workspace(source: Path) -> Path | None:
    """Container mode: write the webserver's and daemon's workspace; None when not configured.

    Raises SettingsError for a bad DATAPLATFORM_SHARED_WORKSPACE, OSError when it cannot be
    written, CodeLocationsError when the file cannot be read.
    """
    from dataplatform import settings
    from dataplatform.runtime.derived_configs import _source_label, write_workspace

    target = settings.shared_workspace().resolved_shared_workspace()
    if target is None:
        return None
    enabled, ws = _enabled_entries(source)
    return write_workspace(target, enabled, ws, _source_label(source), "container")


def _local_platform() -> tuple[str, str] | None:
    """(workspace, webserver url) of the local platform, from its platform.json."""
    try:
        state = json.loads((paths.run_dir() / "platform.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    workspace, url = state.get("workspace"), state.get("webserver", {}).get("url")
    return (workspace, url) if workspace and url else None


def refresh_workspace(source: Path) -> str:
    """Regenerate the workspace the webserver and daemon read and have the webserver re-read it.

    The local platform's (platform.json) if there is one, else the shared one of container
    mode. Returns what was done, for the log; '' when there is neither.
    """
    from dataplatform import settings
    from dataplatform.runtime.dagster_graphql import DagsterGraphQL
    from dataplatform.runtime.derived_configs import _source_label, write_local_workspace

    local = _local_platform()
    if local is not None:
        workspace, url = local
        enabled, ws = _enabled_entries(source)
        write_local_workspace(Path(workspace), enabled, ws, _source_label(source))
    else:
        written = write_shared_workspace(source)
        if written is None:
            return ""
        workspace, url = str(written), settings.shared_workspace().resolved_webserver_url()
    names = DagsterGraphQL(url, timeout=120).reload_workspace()
    return f"workspace {workspace} rewritten; webserver {url} reloaded it ({len(names)} locations)"


class Reconciler:
    """The supervisor's side of a live change: one reconcile at a time, requests coalesced.

    Driven from the supervisor's loop (`tick`); only the webserver call runs in a thread, so a
    slow webserver never holds up health checks or the reloads it triggers.
    """

    def __init__(self, supervisor, host_filter: str | None):
        self.sup = supervisor
        self.host_filter = host_filter
        self.generation = 0
        self._requested = False
        self._current: dict | None = None  # the reconcile in progress
        self._waiting_for: list[str] = []
        self._thread: threading.Thread | None = None
        self._thread_result: dict = {}
        self.last: dict | None = None

    def request(self, signum=None, frame=None) -> None:
        self._requested = True

    @property
    def holding_reloads(self) -> bool:
        """True while the webserver's reloadWorkspace runs: decline its ReloadCode calls."""
        return self._thread is not None

    def tick(self, now: float) -> None:
        if self._current is None:
            if self._requested:
                self._requested = False
                self._begin(now)
            return
        if self._thread is None:
            overdue = now - self._current["t0"] > self.sup.timing.startup_timeout
            if overdue or all(self.sup.settled(name) for name in self._waiting_for):
                self._current["servers_settled_seconds"] = round(now - self._current["t0"], 2)
                self._thread = threading.Thread(
                    target=self._tell_webserver, name="reconcile-workspace", daemon=True
                )
                self._thread.start()
            return
        if not self._thread.is_alive():
            self._thread = None
            self._finish(now)

    def _begin(self, now: float) -> None:
        read_at = time.time()
        try:
            wanted, errors = select_locations(self.sup.source, self.host_filter, quiet=True)
        except CodeLocationsError as exc:
            log.error("reconcile: cannot read %s; nothing changed:\n%s", self.sup.source, exc)
            self.generation += 1
            self.last = {"generation": self.generation, "read_at": read_at, "state": "failed",
                         "error": str(exc)}  # fmt: skip
            return
        todo = plan({s.location.name: s.location for s in self.sup.servers}, wanted)
        log.info("reconcile: %s: start %s, stop %s, unchanged %s", self.sup.source,
                 [loc.name for loc in todo.start] or "nothing", todo.stop or "nothing",
                 len(todo.keep))  # fmt: skip
        wanted_names = {loc.name for loc in wanted}
        for name in todo.stop:
            why = "module or port changed" if name in wanted_names else "removed or disabled"
            self.sup.remove_location(name, why)
        for loc in todo.start:
            self.sup.add_location(loc, now)
        for finding in errors:
            if str(finding) not in {str(f) for f in self.sup.invalid}:
                log.error("reconcile: skipping: %s", finding)
        self.sup.invalid = errors
        self._waiting_for = [loc.name for loc in todo.start]
        self._thread_result = {}
        self._current = {"read_at": read_at, "t0": now, "state": "starting",
                         "started": self._waiting_for, "stopped": todo.stop,
                         "unchanged": todo.keep}  # fmt: skip

    def _tell_webserver(self) -> None:
        try:
            self._thread_result = {"workspace": refresh_workspace(self.sup.source)}
        except Exception as exc:  # reported in the status; the servers are reconciled anyway
            self._thread_result = {"error": f"reloading the webserver's workspace failed: {exc}"}

    def _finish(self, now: float) -> None:
        done = self._current
        self._current = None
        self.generation += 1
        states = {name: self.sup.state_of(name) for name in done["started"]}
        error = self._thread_result.get("error", "")
        self.last = {
            "generation": self.generation,
            "read_at": done["read_at"],
            "state": "failed" if error else "done",
            "started": done["started"],
            "stopped": done["stopped"],
            "unchanged": done["unchanged"],
            "states": states,
            "servers_settled_seconds": done.get("servers_settled_seconds"),
            "seconds": round(now - done["t0"], 2),
            "workspace": self._thread_result.get("workspace", ""),
            "error": error,
        }
        log.info("reconcile done in %.1fs: %s%s", now - done["t0"],
                 ", ".join(f"{n} {s}" for n, s in states.items()) or "no new server",
                 f"; {self.last['workspace']}" if self.last["workspace"] else "")  # fmt: skip
        if error:
            log.error("reconcile: %s", error)

    def status(self) -> dict | None:
        if self._current is not None:
            return {**{k: v for k, v in self._current.items() if k != "t0"},
                    "generation": self.generation, "previous": self.last}  # fmt: skip
        return self.last
