"""How dagster-init starts a code server: a plain process, or a fork of the pre-loaded parent.

Both hand the supervisor a handle with `pid` and `poll()` (None while running, else the exit
code, negative for a signal), so the state machine is the same in both modes.

- `ProcessLauncher` (DAGSTER_INIT_MODE=process): `python -m dagster api grpc ...` per location,
  in its own session. ReloadCode is Dagster's: a warning, no reload.
- `ForkLauncher` (DAGSTER_INIT_MODE=fork, the default): one fork server
  (dataplatform.runtime.forkserver) is started and restarted here; code servers are forked from
  it and re-parented to dagster-init, which is a child subreaper, so it waits for them like its
  own children. A crashed fork server is restarted with backoff; its code servers keep running.
  Code servers ask for a reload over an abstract Unix socket (`reload_requests`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from dataplatform import settings as platform_settings
from dataplatform.runtime import paths, processes
from dataplatform.runtime.backoff import Backoff
from pyairbyte import settings

log = logging.getLogger("dagster-init")

PR_SET_CHILD_SUBREAPER = 36


class LaunchError(RuntimeError):
    """A code server could not be started; the message says why."""


class ProcessLauncher:
    mode = "process"

    def __init__(self, child_logs: bool):
        self.child_logs = child_logs

    def start(self, name: str, grpc_args: list[str], log_path: Path | None):
        return processes.spawn(
            [sys.executable, "-m", "dagster", "api", "grpc", *grpc_args],
            log_path,
            env=os.environ.copy(),
            cwd=settings.app_root(),
        )

    def tick(self, now: float) -> None:
        pass

    def reload_requests(self) -> list[ReloadRequest]:
        return []

    def status(self) -> dict:
        return {}

    def close(self) -> None:
        pass


def become_subreaper() -> bool:
    """Orphaned descendants (our forked code servers) get re-parented to us, not to init."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class Reaper:
    """Waits for every child (as a subreaper we inherit orphans) and keeps tracked exit codes."""

    def __init__(self):
        self.subreaper = become_subreaper()
        self._codes: dict[int, int] = {}
        self._tracked: set[int] = set()

    def track(self, pid: int) -> None:
        self._tracked.add(pid)

    def untrack(self, pid: int) -> None:
        self._tracked.discard(pid)
        self._codes.pop(pid, None)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self._tracked:
                self._codes[pid] = os.waitstatus_to_exitcode(status)

    def poll(self, pid: int, created: float) -> int | None:
        self.reap()
        if pid in self._codes:
            return self._codes[pid]
        try:
            proc = psutil.Process(pid)
            same = abs(proc.create_time() - created) < 1
            if same and proc.status() != psutil.STATUS_ZOMBIE:
                return None
            if same and proc.ppid() == os.getpid():
                # It exited after reap() looked: our child, so its exit code is ours to read.
                self.reap()
                return self._codes.get(pid)
        except psutil.NoSuchProcess:
            pass
        # Not our child (no subreaper): gone, with an exit code we cannot know.
        self.reap()
        return self._codes.get(pid, 255)


class Child:
    """A process we track by pid (not a Popen of ours), with Popen's pid/poll shape."""

    def __init__(self, pid: int, reaper: Reaper):
        self.pid = pid
        self._reaper = reaper
        reaper.track(pid)
        try:
            self._created = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            self._created = 0.0

    def poll(self) -> int | None:
        return self._reaper.poll(self.pid, self._created)


@dataclass
class ReloadRequest:
    """A code server's ReloadCode, waiting for our answer on `conn`."""

    conn: socket.socket
    location: str
    pid: int

    def answer(self, ok: bool, **detail) -> None:
        with contextlib.suppress(OSError):
            self.conn.sendall(json.dumps({"ok": ok, **detail}).encode() + b"\n")
        self.conn.close()


class ForkLauncher:
    mode = "fork"

    def __init__(self, child_logs: bool, preload: list[str], backoff_max: float):
        self.child_logs = child_logs
        self.preload = preload
        self.backoff_max = backoff_max
        self.reaper = Reaper()
        self.control_address = f"\0dataplatform-dagster-init-{os.getpid()}-{time.time_ns()}"
        self._control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._control.bind(self.control_address)
        self._control.listen(16)
        self._control.setblocking(False)
        self._parent: Child | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self.ready_info: dict | None = None
        self.restarts = 0
        self._backoff = Backoff(maximum=backoff_max)
        self._next_start = 0.0
        self._started_at = 0.0

    # ---- the fork server -------------------------------------------------------------------

    @property
    def parent_pid(self) -> int | None:
        return self._parent.pid if self._parent is not None else None

    def _log_path(self) -> Path | None:
        return paths.log_dir() / "fork-server.log" if self.child_logs else None

    def _start_parent(self, now: float) -> None:
        ours, theirs = socket.socketpair()
        popen = processes.spawn(
            [sys.executable, "-m", "dataplatform.runtime.forkserver",
             str(theirs.fileno()), ",".join(self.preload)],
            self._log_path(),
            env=os.environ.copy(),
            cwd=settings.app_root(),
            pass_fds=(theirs.fileno(),),
        )  # fmt: skip
        theirs.close()
        # Kept: a dropped Popen of a live child is waited for by subprocess's own clean-up,
        # which would take its exit code from our reaper.
        self._popen = popen
        self._parent = Child(popen.pid, self.reaper)
        processes.write_pid_file(paths.run_dir() / "fork-server.pid", popen.pid)
        self._sock, self._buffer, self.ready_info = ours, b"", None
        self._started_at = now
        log.info("fork server: starting (pid %d), pre-loading %s", popen.pid,
                 ", ".join(self.preload) or "dagster only")  # fmt: skip

    def _parent_gone(self, now: float, why: str) -> None:
        log.error("fork server (pid %s) %s; restarting it in %.0fs (running code servers keep "
                  "running)", self.parent_pid, why, self._backoff)  # fmt: skip
        if self._parent is not None and self._parent.poll() is None:
            processes.terminate(self._parent.pid, timeout=5)
        if self._parent is not None:
            self.reaper.untrack(self._parent.pid)
        if self._sock is not None:
            self._sock.close()
        self._parent, self._sock, self.ready_info = None, None, None
        self._next_start = now + self._backoff.take()
        self.restarts += 1

    def _read_line(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = max(deadline - time.monotonic(), 0.0)
            if not select.select([self._sock], [], [], left)[0]:
                return None
            chunk = self._sock.recv(65536)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def tick(self, now: float) -> None:
        self.reaper.reap()
        if self._parent is None:
            if now >= self._next_start:
                self._start_parent(now)
            return
        code = self._parent.poll()
        if code is not None:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            return self._parent_gone(now, how)
        if self.ready_info is None:
            try:
                message = self._read_line(0)
            except (EOFError, OSError):
                return self._parent_gone(now, "closed its socket while pre-loading")
            if message is not None:
                self.ready_info = message
                failed = message.get("failed") or {}
                log.info("fork server: ready in %.1fs (pid %d, %d thread(s), %d in the OS), "
                         "pre-loaded %s", message["seconds"], self.parent_pid,
                         message.get("threads", 0), message.get("os_threads", 0),
                         ", ".join(message["preloaded"]))  # fmt: skip
                for name, error in failed.items():
                    log.warning("fork server: could not pre-load %s (%s); code servers import "
                                "it themselves", name, error)  # fmt: skip
        else:
            self._backoff.note_uptime(now - self._started_at)

    def start(self, name: str, grpc_args: list[str], log_path: Path | None) -> Child | None:
        """Fork a code server; None while the fork server is not ready yet."""
        if self.ready_info is None:
            return None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        request = {"args": grpc_args, "location": name, "cwd": str(settings.app_root()),
                   "log": str(log_path) if log_path else None,
                   "control": self.control_address,
                   "warm_runs": platform_settings.supervisor().warm_runs}  # fmt: skip
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            reply = self._read_line(15.0)
        except (EOFError, OSError) as exc:
            self._parent_gone(time.monotonic(), f"failed a fork request ({exc})")
            return None
        if reply is None:
            self._parent_gone(time.monotonic(), "did not answer a fork request in 15s")
            return None
        if "error" in reply:
            raise LaunchError(f"fork server: {reply['error']}")
        return Child(reply["pid"], self.reaper)

    # ---- reload requests from the code servers ---------------------------------------------

    def reload_requests(self) -> list[ReloadRequest]:
        requests = []
        while True:
            try:
                conn, _ = self._control.accept()
            except BlockingIOError:
                return requests
            try:
                conn.settimeout(2.0)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                message = json.loads(data)
                requests.append(ReloadRequest(conn, message["location"], int(message["pid"])))
            except (OSError, ValueError, KeyError):
                conn.close()

    def status(self) -> dict:
        return {
            "pid": self.parent_pid,
            "state": "ready" if self.ready_info else ("starting" if self._parent else "backoff"),
            "restarts": self.restarts,
            "preload_seconds": self.ready_info.get("seconds") if self.ready_info else None,
            "subreaper": self.reaper.subreaper,
        }

    def close(self) -> None:
        if self._parent is not None and self._parent.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._parent.pid, signal.SIGTERM)
            processes.terminate(self._parent.pid, timeout=5)
        if self._sock is not None:
            self._sock.close()
        self._control.close()
        (paths.run_dir() / "fork-server.pid").unlink(missing_ok=True)
        self.reaper.reap()


def launcher_for(mode: str, child_logs: bool, preload: list[str], backoff_max: float):
    if mode == "process":
        return ProcessLauncher(child_logs)
    return ForkLauncher(child_logs, preload, backoff_max)
