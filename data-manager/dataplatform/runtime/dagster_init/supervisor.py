"""dagster-init: one `dagster api grpc` code server per enabled code location, supervised.

    python -m dataplatform.runtime.dagster_init [--bind-host 0.0.0.0] [--file code-locations.json]

- Reads and validates code-locations.json; a bad entry is reported and skipped, the rest served.
- Checks each port is free first; a taken port is reported (with the process holding it) and
  retried with backoff, so the location comes up once the port is released.
- Waits until each server answers, using one long-lived health checker in this process (a gRPC
  health call costs ~1 ms here; `dagster api grpc-health-check` costs 2 s and 100 MB per call).
- Restarts a server that exits or stops answering, with exponential backoff, and logs why.
- Servers run with --lazy-load-user-code: a location whose code fails to import stays up and
  serves its error, so the UI shows the traceback; it is reported here as "load_error".
- SIGTERM/SIGINT stop every child (each in its own session, so Dagster's signal handling works);
  SIGHUP restarts all servers, which reloads their code.

State goes to <platform dir>/run/dagster-init.status.json, logs to <platform dir>/logs/.
Bind address: --bind-host or $DAGSTER_GRPC_BIND_HOST (127.0.0.1 locally, 0.0.0.0 in containers).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dataplatform.runtime import paths, processes
from dataplatform.runtime.code_locations import (
    CodeLocation,
    CodeLocationsError,
    Finding,
    code_locations_path,
    read_code_locations,
)
from pyairbyte import settings

log = logging.getLogger("dagster-init")

# States a location can be in (written to the status file).
STARTING = "starting"
READY = "ready"
LOAD_ERROR = "load_error"
PORT_IN_USE = "port_in_use"
BACKOFF = "backoff"  # exited or hung; waiting to restart
STOPPED = "stopped"
INVALID = "invalid"  # bad entry in code-locations.json; never started

SERVING_STATES = (READY, LOAD_ERROR)


@dataclass
class Timing:
    poll_interval: float = 0.2
    health_interval: float = 2.0
    health_timeout: float = 2.0
    health_failures_before_restart: int = 3
    startup_timeout: float = float(os.environ.get("DAGSTER_GRPC_STARTUP_TIMEOUT", "180"))
    backoff_initial: float = 1.0
    backoff_max: float = float(os.environ.get("DAGSTER_INIT_BACKOFF_MAX", "30"))
    healthy_resets_backoff_after: float = 60.0
    load_error_retries: int = int(os.environ.get("DAGSTER_INIT_LOAD_ERROR_RETRIES", "2"))


def _list_repositories_reply_class():
    """A message class for Dagster's `api.ListRepositoriesReply`, built without importing Dagster.

    The supervisor only needs one string field from one RPC; importing Dagster for it would cost
    seconds of CPU while the code servers are starting on the same cores.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(
        name="dataplatform_list_repositories_probe.proto", package="api", syntax="proto3"
    )
    reply = proto.message_type.add(name="ListRepositoriesReply")
    reply.field.add(
        name="serialized_list_repositories_response_or_error",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()  # private pool: never clashes with Dagster's own
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("api.ListRepositoriesReply"))


class HealthChecker:
    """One long-lived checker: a cached gRPC channel per server.

    Liveness uses the standard gRPC health service, which Dagster's server registers under
    "DagsterApi". When a server first answers we also call Dagster's ListRepositories once: it
    returns a serialized error instead of repositories when the location's code failed to load.
    """

    def __init__(self):
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        self._grpc = grpc
        self._pb2 = health_pb2
        self._stub_cls = health_pb2_grpc.HealthStub
        self._reply_cls = _list_repositories_reply_class()
        self._channels: dict[tuple[str, int], object] = {}

    def _channel(self, host: str, port: int):
        key = (host, port)
        if key not in self._channels:
            self._channels[key] = self._grpc.insecure_channel(
                f"{host}:{port}", options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
            )
        return self._channels[key]

    def forget(self, host: str, port: int) -> None:
        """Drop the channel after a restart so we never talk to a stale connection."""
        channel = self._channels.pop((host, port), None)
        if channel is not None:
            channel.close()

    def is_serving(self, host: str, port: int, timeout: float) -> bool:
        stub = self._stub_cls(self._channel(host, port))
        try:
            response = stub.Check(
                self._pb2.HealthCheckRequest(service="DagsterApi"), timeout=timeout
            )
        except self._grpc.RpcError:
            return False
        return response.status == self._pb2.HealthCheckResponse.SERVING

    def load_error(self, host: str, port: int, timeout: float = 30.0) -> str | None:
        """None if the location's definitions loaded, else the error message it serves."""
        call = self._channel(host, port).unary_unary(
            "/api.DagsterApi/ListRepositories",
            request_serializer=lambda _: b"",  # ListRepositoriesRequest has no fields
            response_deserializer=self._reply_cls.FromString,
        )
        reply = call(None, timeout=timeout)
        payload = json.loads(reply.serialized_list_repositories_response_or_error)
        if payload.get("__class__") != "SerializableErrorInfo":
            return None
        # The innermost cause is the user's own error (e.g. "ImportError: No module named x");
        # the outer layers are Dagster's wrapping, with the full traceback shown in the UI.
        err = payload
        while isinstance(err.get("cause"), dict):
            err = err["cause"]
        lines = str(err.get("message", "")).strip().splitlines()
        return lines[0] if lines else "unknown load error"

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()


@dataclass
class ManagedServer:
    location: CodeLocation
    state: str = STARTING
    popen: object | None = None  # subprocess.Popen
    started_at: float = 0.0
    ready_after: float | None = None
    restarts: int = 0
    backoff: float = 1.0
    next_attempt: float = 0.0
    health_failures: int = 0
    next_health_check: float = 0.0
    message: str = ""
    load_retries: int = 0
    claim: object | None = None  # machine-wide claim on the port (processes.claim)

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
        timing: Timing | None = None,
        child_logs: bool = True,
    ):
        self.bind_host = bind_host
        # 0.0.0.0 is not an address to connect to; the servers answer on loopback too.
        self.check_host = "127.0.0.1" if bind_host in ("0.0.0.0", "") else bind_host
        self.source = source
        self.timing = timing or Timing()
        self.child_logs = child_logs
        self.servers = [
            ManagedServer(loc, backoff=self.timing.backoff_initial) for loc in locations
        ]
        self.invalid = invalid
        self._stop_requested = False
        self._restart_all = False
        self._checker: HealthChecker | None = None
        self._started = time.monotonic()
        self._initial_round_logged = False
        self._last_status: str | None = None

    # ---- process control -------------------------------------------------------------------

    def _command(self, loc: CodeLocation) -> list[str]:
        return [
            sys.executable,
            "-m",
            "dagster",
            "api",
            "grpc",
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
        srv.popen = processes.spawn(
            self._command(loc),
            self._log_path(loc) if self.child_logs else None,
            env=os.environ.copy(),
            cwd=settings.app_root(),
        )
        processes.write_pid_file(self._pid_path(loc), srv.popen.pid)
        srv.state, srv.message = STARTING, ""
        srv.started_at = now
        srv.ready_after = None
        srv.health_failures = 0
        log.info(
            "location %s: starting %s on %s:%d (pid %d)",
            loc.name,
            loc.module,
            self.bind_host,
            loc.port,
            srv.popen.pid,
        )

    def _port_in_use(self, srv: ManagedServer, now: float, message: str, remedy: str) -> None:
        """Report a location whose port is taken (once per distinct cause) and retry later."""
        if srv.state != PORT_IN_USE or srv.message != message:
            log.error(
                'location %s NOT started: %s; %s or change its "port" in %s '
                "(retrying every %.0fs at most)",
                srv.location.name,
                message,
                remedy,
                self.source,
                self.timing.backoff_max,
            )
        srv.state, srv.message = PORT_IN_USE, message
        self._schedule_retry(srv, now, quiet=True)

    def _schedule_retry(self, srv: ManagedServer, now: float, quiet: bool = False) -> None:
        srv.next_attempt = now + srv.backoff
        if not quiet:
            log.warning(
                "location %s: restarting in %.0fs (restart #%d)",
                srv.location.name,
                srv.backoff,
                srv.restarts + 1,
            )
        srv.backoff = min(srv.backoff * 2, self.timing.backoff_max)

    def _kill(self, srv: ManagedServer, timeout: float = 10.0) -> None:
        if srv.popen is not None and srv.popen.poll() is None:
            processes.terminate(srv.popen.pid, timeout=timeout, popen=srv.popen)
        if self._checker is not None:
            self._checker.forget(self.check_host, srv.location.port)
        srv.popen = None
        self._pid_path(srv.location).unlink(missing_ok=True)

    def _log_tail(self, loc: CodeLocation, lines: int = 12) -> str:
        try:
            text = self._log_path(loc).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n    ".join(text[-lines:])

    # ---- one supervision step --------------------------------------------------------------

    def _tick(self, srv: ManagedServer, now: float) -> None:
        loc = srv.location
        if srv.popen is None:
            if now >= srv.next_attempt:
                if srv.state == BACKOFF:
                    srv.restarts += 1
                self._try_start(srv, now)
            return
        code = srv.popen.poll()
        if code is not None:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            srv.popen = None
            self._pid_path(loc).unlink(missing_ok=True)
            if self._checker is not None:
                self._checker.forget(self.check_host, loc.port)
            srv.state, srv.message = BACKOFF, f"gRPC server {how}"
            tail = self._log_tail(loc) if self.child_logs else ""
            log.error(
                "location %s: gRPC server (port %d) %s%s",
                loc.name,
                loc.port,
                how,
                f"; last lines of {self._log_path(loc)}:\n    {tail}" if tail else "",
            )
            self._schedule_retry(srv, now)
            return
        if srv.state == STARTING:
            if self._checker.is_serving(self.check_host, loc.port, self.timing.health_timeout):
                srv.ready_after = time.monotonic() - srv.started_at
                sharing = processes.other_listeners(loc.port, {srv.popen.pid})
                if sharing:
                    message = f"port {loc.port} is also bound by {', '.join(sharing)}"
                    log.error(
                        "location %s: %s (it started between our check and our bind); "
                        "stopping ours and retrying",
                        loc.name,
                        message,
                    )
                    self._kill(srv)
                    srv.state, srv.message = PORT_IN_USE, message
                    self._schedule_retry(srv, now, quiet=True)
                    return
                error = self._load_error(srv)
                if error is None:
                    srv.state, srv.message = READY, ""
                    log.info(
                        "location %s: ready on port %d after %.1fs",
                        loc.name,
                        loc.port,
                        srv.ready_after,
                    )
                elif srv.load_retries < self.timing.load_error_retries:
                    # A load can fail for a passing reason (the database still starting, a
                    # first-start race creating Dagster's tables); try again before giving up.
                    srv.load_retries += 1
                    log.warning(
                        "location %s: code failed to load (%s); retry %d of %d",
                        loc.name,
                        error,
                        srv.load_retries,
                        self.timing.load_error_retries,
                    )
                    self._kill(srv)
                    srv.state, srv.message = BACKOFF, error
                    self._schedule_retry(srv, now)
                    return
                else:
                    srv.state, srv.message = LOAD_ERROR, error
                    log.error(
                        "location %s: server is up on port %d but its code failed to load "
                        "(the UI shows the traceback; fix it, then restart the platform or send "
                        "SIGHUP to dagster-init): %s",
                        loc.name,
                        loc.port,
                        error,
                    )
                srv.next_health_check = now + self.timing.health_interval
            elif now - srv.started_at > self.timing.startup_timeout:
                log.error(
                    "location %s: no answer on port %d after %.0fs; killing it",
                    loc.name,
                    loc.port,
                    self.timing.startup_timeout,
                )
                self._kill(srv)
                srv.state, srv.message = BACKOFF, "did not answer in time"
                self._schedule_retry(srv, now)
            return
        # READY or LOAD_ERROR: periodic liveness check.
        if now < srv.next_health_check:
            return
        srv.next_health_check = now + self.timing.health_interval
        if self._checker.is_serving(self.check_host, loc.port, self.timing.health_timeout):
            srv.health_failures = 0
            if now - srv.started_at > self.timing.healthy_resets_backoff_after:
                srv.backoff = self.timing.backoff_initial
            return
        srv.health_failures += 1
        if srv.health_failures >= self.timing.health_failures_before_restart:
            log.error(
                "location %s: pid %s stopped answering health checks (%d in a row); killing it",
                loc.name,
                srv.pid,
                srv.health_failures,
            )
            self._kill(srv)
            srv.state, srv.message = BACKOFF, "stopped answering health checks"
            self._schedule_retry(srv, now)

    def _load_error(self, srv: ManagedServer) -> str | None:
        try:
            return self._checker.load_error(self.check_host, srv.location.port)
        except Exception as exc:  # noqa: BLE001 - report, never crash the supervisor
            return f"could not ask the server whether its code loaded: {exc}"

    # ---- reporting -------------------------------------------------------------------------

    def status(self) -> dict:
        return {
            "supervisor_pid": os.getpid(),
            "source": str(self.source),
            "bind_host": self.bind_host,
            "initial_round_complete": self._initial_round_logged,
            "locations": {
                srv.location.name: {
                    "state": srv.state,
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
        }

    def _write_status(self) -> None:
        status = self.status()
        text = json.dumps(status, indent=2, sort_keys=True)
        if text == self._last_status:
            return
        self._last_status = text
        target = paths.supervisor_status_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, target)

    def _maybe_log_initial_round(self, now: float) -> None:
        if self._initial_round_logged:
            return
        settled = all(
            srv.state in (READY, LOAD_ERROR, PORT_IN_USE)
            or (srv.state == BACKOFF and srv.load_retries == 0)  # crashed, not a load retry
            for srv in self.servers
        )
        if not settled and now - self._started < self.timing.startup_timeout:
            return
        self._initial_round_logged = True
        serving = [s for s in self.servers if s.state == READY]
        problems = [s for s in self.servers if s.state != READY]
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
                srv.state,
                srv.message,
            )
        for finding in self.invalid:
            log.error("NOT started (invalid entry): %s", finding)

    # ---- main loop -------------------------------------------------------------------------

    def request_stop(self, signum=None, frame=None) -> None:
        self._stop_requested = True

    def request_restart_all(self, signum=None, frame=None) -> None:
        self._restart_all = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_restart_all)
        paths.run_dir().mkdir(parents=True, exist_ok=True)
        processes.write_pid_file(paths.run_dir() / "dagster-init.pid", os.getpid())
        for finding in self.invalid:
            log.error("skipping: %s", finding)
        try:
            # Start every server before importing gRPC, so that import overlaps their startup.
            now = time.monotonic()
            for srv in self.servers:
                self._tick(srv, now)
            self._write_status()
            self._checker = HealthChecker()
            while not self._stop_requested:
                if self._restart_all:
                    self._restart_all = False
                    log.info("SIGHUP: restarting every code server to reload code")
                    for srv in self.servers:
                        self._kill(srv)
                        srv.state, srv.next_attempt, srv.load_retries = STARTING, 0.0, 0
                        srv.backoff = self.timing.backoff_initial
                now = time.monotonic()
                for srv in self.servers:
                    if self._stop_requested:
                        break
                    self._tick(srv, now)
                self._maybe_log_initial_round(time.monotonic())
                self._write_status()
                time.sleep(self.timing.poll_interval)
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        log.info("stopping %d code server(s)", sum(1 for s in self.servers if s.pid))
        for srv in self.servers:
            if srv.popen is not None and srv.popen.poll() is None:
                processes._signal_group(srv.popen.pid, signal.SIGTERM)
        for srv in self.servers:
            self._kill(srv)  # waits, escalating to SIGKILL if needed
            srv.state = STOPPED
            if srv.claim is not None:
                srv.claim.close()
                srv.claim = None
        if self._checker is not None:
            self._checker.close()
        self._write_status()
        (paths.run_dir() / "dagster-init.pid").unlink(missing_ok=True)
        log.info("all code servers stopped")


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def healthcheck() -> int:
    """0 when the running supervisor finished starting and every location serves; else 1.

    Reads the status file only (no Dagster import), so it is cheap enough for a container
    HEALTHCHECK; compose starts the webserver and daemon once this passes.
    """
    try:
        status = json.loads(paths.supervisor_status_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        print("dagster-init: no status yet")
        return 1
    pid = processes.read_live_pid(paths.run_dir() / "dagster-init.pid")
    if pid != status.get("supervisor_pid"):
        print("dagster-init: not running")
        return 1
    waiting = [n for n, i in status["locations"].items() if i["state"] not in SERVING_STATES]
    if not status.get("initial_round_complete") or waiting:
        print(f"dagster-init: waiting for {', '.join(waiting) or 'first start'}")
        return 1
    print("dagster-init: all locations serving")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Start and supervise one gRPC code server per enabled code location."
    )
    parser.add_argument(
        "--bind-host",
        default=os.environ.get("DAGSTER_GRPC_BIND_HOST", "127.0.0.1"),
        help="address the code servers listen on (env DAGSTER_GRPC_BIND_HOST)",
    )
    parser.add_argument("--file", type=Path, help="code-locations.json (env CODE_LOCATIONS_FILE)")
    parser.add_argument(
        "--child-output",
        choices=("file", "inherit"),
        default=os.environ.get("DAGSTER_INIT_CHILD_OUTPUT", "file"),
        help="code server output: a log file each (local) or our stdout (containers)",
    )
    parser.add_argument(
        "--healthcheck",
        action="store_true",
        help="exit 0 if a running dagster-init has every location up (for container health)",
    )
    args = parser.parse_args(argv)
    if args.healthcheck:
        return healthcheck()
    configure_logging()
    source = args.file or code_locations_path()
    try:
        locations, findings = read_code_locations(source)
    except CodeLocationsError as exc:
        log.error("cannot read code locations:\n%s", exc)
        return 2
    for warning in (f for f in findings if f.severity == "warning"):
        log.warning("%s", warning)
    errors = [f for f in findings if f.severity == "error"]
    active = [loc for loc in locations if loc.enabled]
    for loc in locations:
        if not loc.enabled:
            log.info("location %s: disabled in %s, not started", loc.name, source)
    if not active:
        for finding in errors:
            log.error("%s", finding)
        log.error("no enabled, valid code location in %s; nothing to serve", source)
        return 2
    supervisor = Supervisor(
        active, errors, args.bind_host, source, child_logs=args.child_output == "file"
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
