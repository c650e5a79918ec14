"""Keep one platform process alive: start it, restart it with backoff when it exits, say why.

    python -m dataplatform.local.watchdog dagster-daemon -- dagster-daemon run -w workspace.yaml

Local mode runs the Dagster daemon and the webserver each under one of these, as dagster-init
runs the code servers. Without it a daemon killed by the OOM killer or `kill -9` stayed dead, and
queued runs waited forever while nothing said so (the daemon's health query still answered
"healthy" from its last heartbeat).

The child runs in its own session (its own process group) and appends to <log dir>/NAME.log;
so do this watchdog's own lines, e.g.

    [watchdog] dagster-daemon (pid 4711) was killed by signal 9 after 42s; restarting in 1s

Its PID is in <run dir>/NAME.pid, the watchdog's in NAME-watchdog.pid, and NAME.watchdog.json
says how often it restarted and why it last exited (`platform status` shows both). SIGTERM or
SIGINT stop the child (SIGTERM, then SIGKILL after 20 s) and then the watchdog, so `platform
stop` stops it by its PID like any other process. Restarts wait as dagster-init's do
(runtime/backoff.py): from 1 s, doubling to $DAGSTER_INIT_BACKOFF_MAX (30 s), and from 1 s again
after a child stayed up for 60 s.

Only an exit is noticed, not a hang: a daemon that stops heart-beating while alive is not
restarted (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dataplatform import settings as platform_settings
from dataplatform.runtime import paths, processes
from dataplatform.runtime.backoff import Backoff
from pyairbyte import settings

STOP_TIMEOUT = 20.0


def status_file(name: str) -> Path:
    return paths.run_dir() / f"{name}.watchdog.json"


def read_status(name: str) -> dict:
    try:
        return json.loads(status_file(name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _say(name: str, message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} [watchdog] {name}{message}", flush=True)


def describe_exit(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


class Watchdog:
    def __init__(self, name: str, cmd: list[str], backoff_max: float):
        self.name = name
        self.cmd = cmd
        self.backoff = Backoff(maximum=backoff_max)
        self.restarts = 0
        self.last_exit = ""
        self.child: subprocess.Popen | None = None
        self._stop = False

    @property
    def child_pid_file(self) -> Path:
        return paths.run_dir() / f"{self.name}.pid"

    def request_stop(self, signum=None, frame=None) -> None:
        self._stop = True

    def _write_status(self) -> None:
        status = {
            "watchdog_pid": os.getpid(),
            "pid": self.child.pid if self.child else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }
        processes.write_atomic(status_file(self.name), json.dumps(status) + "\n")

    def _start_child(self) -> float:
        self.child = processes.spawn(
            self.cmd, paths.log_dir() / f"{self.name}.log", cwd=settings.app_root()
        )
        processes.write_pid_file(self.child_pid_file, self.child.pid)
        self._write_status()
        return time.monotonic()

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once for a stop request."""
        deadline = time.monotonic() + seconds
        while not self._stop and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        try:
            started = self._start_child()
            _say(self.name, f": started (pid {self.child.pid})")
            while not self._stop:
                code = self.child.poll()
                if code is None:
                    self.backoff.note_uptime(time.monotonic() - started)
                    time.sleep(0.2)
                    continue
                up_for = time.monotonic() - started
                self.last_exit = f"pid {self.child.pid} {describe_exit(code)} after {up_for:.0f}s"
                self.child_pid_file.unlink(missing_ok=True)
                self.restarts += 1
                self._write_status()
                delay = self.backoff.take()
                _say(
                    self.name,
                    f" ({self.last_exit}); restarting in {delay:.0f}s (restart #{self.restarts})",
                )
                self._sleep(delay)
                if not self._stop:
                    started = self._start_child()
                    _say(self.name, f": restarted (pid {self.child.pid})")
        finally:
            self._stop_child()
        return 0

    def _stop_child(self) -> None:
        if self.child is not None and self.child.poll() is None:
            _say(self.name, f": stopping pid {self.child.pid}")
            processes.terminate(self.child.pid, timeout=STOP_TIMEOUT, popen=self.child)
        self.child_pid_file.unlink(missing_ok=True)
        self.child = None
        self._write_status()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m dataplatform.local.watchdog NAME -- COMMAND...", file=sys.stderr)
        return 2
    backoff_max = platform_settings.supervisor().backoff_max
    return Watchdog(argv[0], argv[2:], backoff_max).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
