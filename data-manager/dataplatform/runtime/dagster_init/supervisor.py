"""The supervisor: one `dagster api grpc` server per location, driven through explicit states.

Each location is in one `LocationState`; every poll calls that state's handler, which decides
the next state. Only STARTING, READY, LOAD_ERROR and RELOADING have a live server; BACKOFF and
PORT_IN_USE wait for their retry time; STOPPED and INVALID do nothing.

How a server is started is the launcher's business (`launchers`): a plain process, or a fork of
the pre-loaded fork server. In fork mode a server's ReloadCode arrives here as a request: the
location is forked afresh on the same port (RELOADING), and once the new server listens the old
one stops listening and finishes the runs it started.

SIGUSR1 reconciles the servers with code-locations.json (`reconcile`): new entries are started,
removed ones stopped, the others left alone; SIGHUP restarts every server.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.runtime import backoff, paths, processes
from dataplatform.runtime.backoff import Backoff
from dataplatform.runtime.code_locations import CodeLocation, Finding
from dataplatform.runtime.dagster_init.health import HealthChecker
from dataplatform.runtime.dagster_init.launchers import (
    LaunchError,
    ProcessLauncher,
    ReloadRequest,
)
from dataplatform.runtime.dagster_init.reconcile import Reconciler
from dataplatform.settings import SupervisorSettings

log = logging.getLogger("dagster-init")


class LocationState(enum.Enum):
    """A location's state; the value is what the status file shows."""

    STARTING = "starting"  # due to start, or started and not answering yet
    READY = "ready"
    LOAD_ERROR = "load_error"  # up, serving the error its code raised on import
    PORT_IN_USE = "port_in_use"
    BACKOFF = "backoff"  # exited or hung; waiting to restart
    STOPPED = "stopped"
    INVALID = "invalid"  # bad entry in code-locations.json; never started
    RELOADING = "reloading"  # serving, while a fresh fork of it loads (fork mode's Reload)


SERVING_STATES = (LocationState.READY, LocationState.LOAD_ERROR, LocationState.RELOADING)


@dataclass
class Timing:
    startup_timeout: float
    backoff_max: float
    load_error_retries: int
    poll_interval: float = 0.2
    # A crash is seen at once (the child exits); health checks only catch a hung server, so
    # every 5 s (a hang is restarted after 3 misses, ~15 s): at 30 locations a 2 s interval
    # cost dagster-init about 2.5 % of a core while idle.
    health_interval: float = 5.0
    health_timeout: float = 2.0
    health_failures_before_restart: int = 3
    backoff_initial: float = backoff.INITIAL
    healthy_resets_backoff_after: float = backoff.HEALTHY_AFTER

    @classmethod
    def from_settings(cls, supervisor: SupervisorSettings) -> Timing:
        return cls(
            startup_timeout=supervisor.startup_timeout,
            backoff_max=supervisor.backoff_max,
            load_error_retries=supervisor.load_error_retries,
        )


@dataclass
class ManagedServer:
    location: CodeLocation
    state: LocationState = LocationState.STARTING
    popen: subprocess.Popen | None = None  # or a launchers.Child: anything with pid and poll()
    started_at: float = 0.0
    ready_after: float | None = None
    restarts: int = 0
    backoff: Backoff = field(default_factory=lambda: Backoff(maximum=backoff.INITIAL))
    next_attempt: float = 0.0
    health_failures: int = 0
    next_health_check: float = 0.0
    message: str = ""
    load_retries: int = 0
    claim: object | None = None  # machine-wide claim on the port (processes.claim)
    replacement: object | None = None  # RELOADING: the fresh fork, until it listens
    reload: ReloadRequest | None = None
    state_before_reload: LocationState = LocationState.READY

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None


class Supervisor:
    def __init__(
        self,
        locations: list[CodeLocation],
        invalid: list[Finding],
        bind_host: str,
        source: Path,
        timing: Timing,
        child_logs: bool = True,
        launcher=None,
        host_filter: str | None = None,
    ):
        self.bind_host = bind_host
        # 0.0.0.0 is not an address to connect to; the servers answer on loopback too.
        self.check_host = "127.0.0.1" if bind_host in ("0.0.0.0", "") else bind_host
        self.source = source
        self.timing = timing
        self.child_logs = child_logs
        self.launcher = launcher or ProcessLauncher(child_logs)
        self.retired: list = []  # replaced by a reload; finishing their runs
        self.servers = [ManagedServer(loc, backoff=self._backoff()) for loc in locations]
        self.invalid = invalid
        self._stop_requested = False
        self._restart_all = False
        self._checker: HealthChecker | None = None
        self._started = time.monotonic()
        self._initial_round_logged = False
        self._last_status: str | None = None
        self.reconciler = Reconciler(self, host_filter)
        self._handlers: dict[LocationState, Callable[[ManagedServer, float], None]] = {
            LocationState.STARTING: self._on_starting,
            LocationState.READY: self._on_serving,
            LocationState.LOAD_ERROR: self._on_serving,
            LocationState.BACKOFF: self._on_backoff,
            LocationState.PORT_IN_USE: self._on_port_in_use,
            LocationState.STOPPED: self._on_idle,
            LocationState.INVALID: self._on_idle,
            LocationState.RELOADING: self._on_reloading,
        }

    # ---- process control -------------------------------------------------------------------

    def _backoff(self) -> Backoff:
        t = self.timing
        return Backoff(t.backoff_max, t.backoff_initial, t.healthy_resets_backoff_after)

    def _grpc_args(self, loc: CodeLocation) -> list[str]:
        """The arguments of `dagster api grpc` (both launchers run exactly that command)."""
        return [
            "--module-name",
            loc.module,
            "--host",
            self.bind_host,
            "--port",
            str(loc.port),
            "--location-name",
            loc.name,
            "--lazy-load-user-code",
        ]

    def _log_path(self, loc: CodeLocation) -> Path:
        return paths.log_dir() / f"code-server-{loc.name}.log"

    def _pid_path(self, loc: CodeLocation) -> Path:
        return paths.run_dir() / f"code-server-{loc.name}.pid"

    def _try_start(self, srv: ManagedServer, now: float) -> None:
        loc = srv.location
        if srv.claim is None:
            srv.claim = processes.claim(f"dataplatform-grpc-port-{loc.port}")
        if srv.claim is None:
            message = f"port {loc.port} is served by another dagster-init on this machine"
            return self._port_in_use(srv, now, message, "stop that platform")
        if not processes.port_is_free(self.bind_host, loc.port):
            holder = processes.port_holder(loc.port)
            message = f"port {loc.port} on {self.bind_host} is already in use" + (
                f" by {holder}" if holder else ""
            )
            return self._port_in_use(srv, now, message, "free the port")
        try:
            srv.popen = self._launch(loc)
        except LaunchError as exc:
            log.error("location %s: %s", loc.name, exc)
            srv.state, srv.message = LocationState.BACKOFF, str(exc)
            return self._schedule_retry(srv, now)
        if srv.popen is None:
            srv.message = "waiting for the fork server to finish pre-loading"
            return
        processes.write_pid_file(self._pid_path(loc), srv.popen.pid)
        srv.state, srv.message = LocationState.STARTING, ""
        srv.started_at = now
        srv.ready_after = None
        srv.health_failures = 0
        log.info(
            "location %s: starting %s on %s:%d (pid %d, %s)",
            loc.name,
            loc.module,
            self.bind_host,
            loc.port,
            srv.popen.pid,
            "forked" if self.launcher.mode == "fork" else "process",
        )

    def _launch(self, loc: CodeLocation):
        log_path = self._log_path(loc) if self.child_logs else None
        return self.launcher.start(loc.name, self._grpc_args(loc), log_path)

    def _port_in_use(self, srv: ManagedServer, now: float, message: str, remedy: str) -> None:
        """Report a location whose port is taken (once per distinct cause) and retry later."""
        if srv.state != LocationState.PORT_IN_USE or srv.message != message:
            log.error(
                'location %s NOT started: %s; %s or change its "port" in %s '
                "(retrying every %.0fs at most)",
                srv.location.name,
                message,
                remedy,
                self.source,
                self.timing.backoff_max,
            )
        srv.state, srv.message = LocationState.PORT_IN_USE, message
        self._schedule_retry(srv, now, quiet=True)

    def _schedule_retry(self, srv: ManagedServer, now: float, quiet: bool = False) -> None:
        delay = srv.backoff.take()
        srv.next_attempt = now + delay
        if not quiet:
            log.warning(
                "location %s: restarting in %.0fs (restart #%d)",
                srv.location.name,
                delay,
                srv.restarts + 1,
            )

    @staticmethod
    def _terminate(proc, timeout: float = 10.0) -> None:
        if proc is not None and proc.poll() is None:
            popen = proc if isinstance(proc, subprocess.Popen) else None
            processes.terminate(proc.pid, timeout=timeout, popen=popen)

    def _kill(self, srv: ManagedServer, timeout: float = 10.0) -> None:
        self._end_reload(srv, "the location is being restarted")
        self._terminate(srv.popen, timeout)
        if self._checker is not None:
            self._checker.forget(self.check_host, srv.location.port)
        srv.popen = None
        self._pid_path(srv.location).unlink(missing_ok=True)

    def _kill_and_retry(self, srv: ManagedServer, now: float, message: str) -> None:
        self._kill(srv)
        srv.state, srv.message = LocationState.BACKOFF, message
        self._schedule_retry(srv, now)

    def _log_tail(self, loc: CodeLocation, lines: int = 12) -> str:
        try:
            text = self._log_path(loc).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n    ".join(text[-lines:])

    # ---- one handler per state -------------------------------------------------------------

    def _tick(self, srv: ManagedServer, now: float) -> None:
        self._handlers[srv.state](srv, now)

    def _on_starting(self, srv: ManagedServer, now: float) -> None:
        """Start the child when due; once it answers, decide READY, LOAD_ERROR or a retry."""
        loc = srv.location
        if srv.popen is None:
            if now >= srv.next_attempt:
                self._try_start(srv, now)
            return
        if self._exited(srv, now):
            return
        if self._checker is None:  # the first round starts every child before importing gRPC
            return
        if not self._checker.is_serving(self.check_host, loc.port, self.timing.health_timeout):
            if now - srv.started_at > self.timing.startup_timeout:
                log.error(
                    "location %s: no answer on port %d after %.0fs; killing it",
                    loc.name,
                    loc.port,
                    self.timing.startup_timeout,
                )
                self._kill_and_retry(srv, now, "did not answer in time")
            return
        retired = {proc.pid for proc in self.retired}
        if any(processes.listens_on(pid, loc.port) for pid in retired):
            return  # a reload's old server is closing its listener; ask the new one only
        srv.ready_after = time.monotonic() - srv.started_at
        sharing = processes.other_listeners(loc.port, {srv.popen.pid, *retired})
        if sharing:
            message = f"port {loc.port} is also bound by {', '.join(sharing)}"
            log.error(
                "location %s: %s (it started between our check and our bind); "
                "stopping ours and retrying",
                loc.name,
                message,
            )
            self._kill(srv)
            srv.state, srv.message = LocationState.PORT_IN_USE, message
            self._schedule_retry(srv, now, quiet=True)
            return
        error = self._load_error(srv)
        if error is None:
            srv.state, srv.message = LocationState.READY, ""
            log.info(
                "location %s: ready on port %d after %.1fs", loc.name, loc.port, srv.ready_after
            )
        elif srv.load_retries < self.timing.load_error_retries:
            # A load can fail for a passing reason (the database still starting, a first-start
            # race creating Dagster's tables); try again before giving up.
            srv.load_retries += 1
            log.warning(
                "location %s: code failed to load (%s); retry %d of %d",
                loc.name,
                error,
                srv.load_retries,
                self.timing.load_error_retries,
            )
            self._kill_and_retry(srv, now, error)
            return
        else:
            srv.state, srv.message = LocationState.LOAD_ERROR, error
            log.error(
                "location %s: server is up on port %d but its code failed to load "
                "(the UI shows the traceback; fix it, then restart the platform or send "
                "SIGHUP to dagster-init): %s",
                loc.name,
                loc.port,
                error,
            )
        srv.next_health_check = now + self.timing.health_interval

    def _on_serving(self, srv: ManagedServer, now: float) -> None:
        """READY or LOAD_ERROR: a periodic liveness check; restart after repeated failures."""
        if self._exited(srv, now) or now < srv.next_health_check:
            return
        srv.next_health_check = now + self.timing.health_interval
        if self._checker.is_serving(self.check_host, srv.location.port, self.timing.health_timeout):
            srv.health_failures = 0
            srv.backoff.note_uptime(now - srv.started_at)
            return
        srv.health_failures += 1
        if srv.health_failures >= self.timing.health_failures_before_restart:
            log.error(
                "location %s: pid %s stopped answering health checks (%d in a row); killing it",
                srv.location.name,
                srv.pid,
                srv.health_failures,
            )
            self._kill_and_retry(srv, now, "stopped answering health checks")

    def _on_backoff(self, srv: ManagedServer, now: float) -> None:
        """Exited, hung or failed to load: restart once the backoff is over."""
        if now >= srv.next_attempt:
            srv.restarts += 1
            self._try_start(srv, now)

    def _on_port_in_use(self, srv: ManagedServer, now: float) -> None:
        """Try the port again once the backoff is over (not counted as a restart)."""
        if now >= srv.next_attempt:
            self._try_start(srv, now)

    def _on_idle(self, srv: ManagedServer, now: float) -> None:
        """STOPPED or INVALID: nothing to do."""

    # ---- reload (fork mode) ----------------------------------------------------------------

    def _begin_reload(self, request: ReloadRequest, now: float) -> None:
        """A server's ReloadCode: fork the location afresh on the same port (RELOADING)."""
        srv = next((s for s in self.servers if s.location.name == request.location), None)
        if srv is None or srv.state not in SERVING_STATES or srv.pid != request.pid:
            state = srv.state.value if srv else "unknown"
            return request.answer(False, error=f"location {request.location} is {state}, "
                                  f"not served by pid {request.pid}")  # fmt: skip
        if srv.state == LocationState.RELOADING:
            return request.answer(False, error="a reload is already in progress")
        if self.reconciler.holding_reloads:
            # The webserver's reloadWorkspace after a live add/remove asks every server to
            # reload; this one is unchanged, so it keeps its process (and its runs).
            why = "the workspace is re-read after a live change; this location is unchanged"
            return request.answer(True, kept=why)
        try:
            replacement = self._launch(srv.location)
        except LaunchError as exc:
            return request.answer(False, error=str(exc))
        if replacement is None:
            return request.answer(False, error="the fork server is restarting; try again")
        log.info("location %s: Reload requested; forked pid %d to replace pid %d",
                 srv.location.name, replacement.pid, srv.popen.pid)  # fmt: skip
        srv.state_before_reload, srv.state = srv.state, LocationState.RELOADING
        srv.replacement, srv.reload, srv.started_at = replacement, request, now

    def _end_reload(self, srv: ManagedServer, error: str) -> None:
        """Give up a reload in progress: stop the fresh fork, tell the old server why."""
        if srv.replacement is not None:
            self._terminate(srv.replacement, timeout=5)
            srv.replacement = None
        if srv.reload is not None:
            srv.reload.answer(False, error=error)
            srv.reload = None

    def _on_reloading(self, srv: ManagedServer, now: float) -> None:
        """Wait for the fresh fork to listen; then swap, and check it like a new start."""
        loc, new = srv.location, srv.replacement
        code = new.poll()
        if code is not None or now - srv.started_at > self.timing.startup_timeout:
            why = f"exited with code {code}" if code is not None else "did not listen in time"
            log.error("location %s: reload failed: the new server %s; the old one keeps "
                      "serving", loc.name, why)  # fmt: skip
            self._end_reload(srv, f"the new server {why}; see {self._log_path(loc)}")
            srv.state = srv.state_before_reload
            return
        if not processes.listens_on(new.pid, loc.port):
            return
        old = srv.popen
        self.retired.append(old)
        srv.popen, srv.replacement = new, None
        processes.write_pid_file(self._pid_path(loc), new.pid)
        srv.reload.answer(True, pid=new.pid)
        srv.reload = None
        if self._checker is not None:
            self._checker.forget(self.check_host, loc.port)
        # Checked as a fresh start; a load error is the edit's own, so it is not retried.
        srv.state, srv.load_retries = LocationState.STARTING, self.timing.load_error_retries
        srv.health_failures = 0
        log.info("location %s: pid %d replaces pid %d (which stops listening and finishes its "
                 "runs)", loc.name, new.pid, old.pid)  # fmt: skip

    # ---- live changes (reconcile) -----------------------------------------------------------

    def add_location(self, loc: CodeLocation, now: float) -> None:
        srv = ManagedServer(loc, backoff=self._backoff())
        self.servers.append(srv)
        log.info("location %s: added to %s", loc.name, self.source)
        self._tick(srv, now)

    def remove_location(self, name: str, why: str) -> None:
        srv = next(s for s in self.servers if s.location.name == name)
        log.info("location %s: %s in %s; stopping pid %s", name, why, self.source, srv.pid)
        self._kill(srv)
        if srv.claim is not None:
            srv.claim.close()
        self.servers.remove(srv)

    def state_of(self, name: str) -> str:
        srv = next((s for s in self.servers if s.location.name == name), None)
        return srv.state.value if srv is not None else "removed"

    def settled(self, name: str) -> bool:
        """The location is serving, or has been reported (taken port, crash): done waiting."""
        srv = next((s for s in self.servers if s.location.name == name), None)
        return (
            srv is None
            or srv.state in (*SERVING_STATES, LocationState.PORT_IN_USE)
            or (srv.state == LocationState.BACKOFF and srv.load_retries == 0)
        )

    def _reap_retired(self) -> None:
        self.retired = [proc for proc in self.retired if proc.poll() is None]

    def _exited(self, srv: ManagedServer, now: float) -> bool:
        """If the child exited, log why (with its last log lines), schedule a restart, True."""
        code = srv.popen.poll()
        if code is None:
            return False
        loc = srv.location
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        srv.popen = None
        self._pid_path(loc).unlink(missing_ok=True)
        if self._checker is not None:
            self._checker.forget(self.check_host, loc.port)
        srv.state, srv.message = LocationState.BACKOFF, f"gRPC server {how}"
        tail = self._log_tail(loc) if self.child_logs else ""
        log.error(
            "location %s: gRPC server (port %d) %s%s",
            loc.name,
            loc.port,
            how,
            f"; last lines of {self._log_path(loc)}:\n    {tail}" if tail else "",
        )
        self._schedule_retry(srv, now)
        return True

    def _load_error(self, srv: ManagedServer) -> str | None:
        try:
            return self._checker.load_error(self.check_host, srv.location.port)
        except Exception as exc:  # report, never crash the supervisor
            return f"could not ask the server whether its code loaded: {exc}"

    # ---- reporting -------------------------------------------------------------------------

    def status(self) -> dict:
        return {
            "supervisor_pid": os.getpid(),
            "source": str(self.source),
            "bind_host": self.bind_host,
            "mode": self.launcher.mode,
            "fork_server": self.launcher.status() or None,
            "retired_pids": [proc.pid for proc in self.retired],
            "initial_round_complete": self._initial_round_logged,
            "locations": {
                srv.location.name: {
                    "state": srv.state.value,
                    "module": srv.location.module,
                    "port": srv.location.port,
                    "pid": srv.pid,
                    "restarts": srv.restarts,
                    "ready_after_seconds": (
                        round(srv.ready_after, 2) if srv.ready_after is not None else None
                    ),
                    "message": srv.message,
                }
                for srv in self.servers
            },
            "invalid_entries": [str(f) for f in self.invalid],
            "reconcile": self.reconciler.status(),
        }

    def _write_status(self) -> None:
        text = json.dumps(self.status(), indent=2, sort_keys=True)
        if text == self._last_status:
            return
        self._last_status = text
        processes.write_atomic(paths.supervisor_status_file(), text + "\n")

    def _maybe_log_initial_round(self, now: float) -> None:
        if self._initial_round_logged:
            return
        settled = all(
            srv.state in (*SERVING_STATES, LocationState.PORT_IN_USE)
            # crashed, not a load retry
            or (srv.state == LocationState.BACKOFF and srv.load_retries == 0)
            for srv in self.servers
        )
        if not settled and now - self._started < self.timing.startup_timeout:
            return
        self._initial_round_logged = True
        serving = [s for s in self.servers if s.state == LocationState.READY]
        problems = [s for s in self.servers if s.state != LocationState.READY]
        log.info(
            "initial start done in %.1fs: %d of %d enabled location(s) loaded%s",
            now - self._started,
            len(serving),
            len(self.servers),
            (": " + ", ".join(f"{s.location.name}:{s.location.port}" for s in serving))
            if serving
            else "",
        )
        for srv in problems:
            log.error(
                "NOT loaded: %s (port %d): %s: %s",
                srv.location.name,
                srv.location.port,
                srv.state.value,
                srv.message,
            )
        for finding in self.invalid:
            log.error("NOT started (invalid entry): %s", finding)

    # ---- main loop -------------------------------------------------------------------------

    def request_stop(self, signum=None, frame=None) -> None:
        self._stop_requested = True

    def request_restart_all(self, signum=None, frame=None) -> None:
        self._restart_all = True

    def _restart_every_server(self) -> None:
        log.info("SIGHUP: restarting every code server to reload code")
        for srv in self.servers:
            self._kill(srv)
            srv.state, srv.next_attempt, srv.load_retries = LocationState.STARTING, 0.0, 0
            srv.backoff.reset()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_restart_all)
        signal.signal(signal.SIGUSR1, self.reconciler.request)
        paths.run_dir().mkdir(parents=True, exist_ok=True)
        processes.write_pid_file(paths.run_dir() / "dagster-init.pid", os.getpid())
        for finding in self.invalid:
            log.error("skipping: %s", finding)
        try:
            # Start every server before importing gRPC, so that import overlaps their startup.
            now = time.monotonic()
            self.launcher.tick(now)
            for srv in self.servers:
                self._tick(srv, now)
            self._write_status()
            self._checker = HealthChecker()
            while not self._stop_requested:
                if self._restart_all:
                    self._restart_all = False
                    self._restart_every_server()
                now = time.monotonic()
                self.launcher.tick(now)
                for request in self.launcher.reload_requests():
                    self._begin_reload(request, now)
                self.reconciler.tick(now)
                for srv in self.servers:
                    if self._stop_requested:
                        break
                    self._tick(srv, now)
                self._reap_retired()
                self._maybe_log_initial_round(time.monotonic())
                self._write_status()
                time.sleep(self.timing.poll_interval)
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        log.info("stopping %d code server(s)", sum(1 for s in self.servers if s.pid))
        live = [s.popen for s in self.servers] + [s.replacement for s in self.servers]
        for proc in [p for p in live + self.retired if p is not None and p.poll() is None]:
            processes._signal_group(proc.pid, signal.SIGTERM)
        for proc in self.retired:
            self._terminate(proc)
        self.retired = []
        for srv in self.servers:
            self._kill(srv)  # waits, escalating to SIGKILL if needed
            srv.state = LocationState.STOPPED
            if srv.claim is not None:
                srv.claim.close()
                srv.claim = None
        if self._checker is not None:
            self._checker.close()
        self.launcher.close()
        self._write_status()
        (paths.run_dir() / "dagster-init.pid").unlink(missing_ok=True)
        log.info("all code servers stopped")
