"""Child processes, pid files and ports, shared by dagster-init and the local platform.

Pid files hold just the PID (so `kill $(cat x.pid)` works). A pid is trusted only if that
process started before the pid file was written: a recycled PID belongs to a newer process and
is ignored, so we never signal a stranger.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")  # writers in two processes
    tmp.write_text(text)
    os.replace(tmp, path)


def write_pid_file(path: Path, pid: int) -> None:
    write_atomic(path, f"{pid}\n")


def read_live_pid(path: Path) -> int | None:
    """The PID in `path` if that very process is still alive, else None."""
    try:
        pid = int(path.read_text().strip())
        written_at = path.stat().st_mtime
    except (FileNotFoundError, ValueError):
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        # 1 s slack: create_time and mtime come from different clocks' rounding.
        if proc.create_time() > written_at + 1.0:
            return None
    except psutil.NoSuchProcess:
        return None
    return pid


def signals_not_ignored() -> None:
    """Children inherit *ignored* signals across exec (handled ones reset to default).

    A script that starts us with `cmd &` leaves SIGINT ignored; Dagster maps SIGTERM onto its
    SIGINT handling, so its servers would then ignore `kill`. Installing handlers here makes
    sure every child starts with default dispositions.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(
                sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            )


def spawn(
    cmd: list[str],
    log_path: Path | None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.Popen:
    """Start `cmd` in its own session (own process group), output appended to `log_path`.

    With log_path None the child shares our stdout/stderr (container mode). `pass_fds` stay
    open in the child (the fork server's socket).
    """
    signals_not_ignored()
    if log_path is None:
        return subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True, pass_fds=pass_fds)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
        )


def _signal_group(pid: int, sig: int) -> None:
    """Signal the child's process group (its run workers too), or just the pid if it has none."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def terminate(pid: int, timeout: float = 20.0, popen: subprocess.Popen | None = None) -> bool:
    """SIGTERM the process (group), wait up to `timeout`, then SIGKILL. True if it was running."""
    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None:
            if popen.poll() is not None:
                break
        elif not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    else:
        _signal_group(pid, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess, subprocess.TimeoutExpired):
            (popen.wait if popen is not None else proc.wait)(timeout=5)
    # Reap stragglers of the group (e.g. a run worker that outlived its code server).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, 0)
        os.killpg(pid, signal.SIGKILL)
    return True


def claim(name: str) -> socket.socket | None:
    """A machine-wide claim on `name`, held while the returned socket stays open; None if taken.

    An abstract-namespace Unix socket: no file on disk, and the kernel drops the claim when the
    holder exits, even on SIGKILL. dagster-init claims each port it serves, because gRPC servers
    bind with SO_REUSEPORT: a second platform on this machine could otherwise bind the same
    port a moment after our free-port check, and requests would land on either server.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind("\0" + name)
    except OSError:
        sock.close()
        return None
    return sock


# name -> claim, held until this process exits. A port this process already claimed and that
# nothing listens on any more (its test platform was stopped) is handed out again: a long test
# session starts more private platforms than the range has ports.
_reservations: dict[str, socket.socket] = {}


def reserve_free_ports(count: int, low: int, high: int, owner: str) -> list[int]:
    """`count` free ports in low..high, claimed machine-wide as `owner` for our lifetime.

    For tests and benchmarks that run private platforms: two sessions on one machine (a
    developer's and CI's) never pick the same ports. Random order keeps them apart even
    before the claims.
    """
    candidates = [p for p in range(low, high + 1) if port_is_free("127.0.0.1", p)]
    random.shuffle(candidates)
    # Ports never handed out first; ours from a stopped platform only when those run out.
    candidates.sort(key=lambda p: f"dataplatform-{owner}-port-{p}" in _reservations)
    chosen: list[int] = []
    claimed_elsewhere = []
    for port in candidates:
        name = f"dataplatform-{owner}-port-{port}"
        if name not in _reservations:
            reservation = claim(name)
            if reservation is None:
                claimed_elsewhere.append(port)  # another session's
                continue
            _reservations[name] = reservation
        chosen.append(port)
        if len(chosen) == count:
            return sorted(chosen)
    busy = sorted(set(range(low, high + 1)) - set(candidates))
    raise RuntimeError(
        f"need {count} free ports in {low}-{high}; in use: {busy}, reserved by other "
        f"sessions: {sorted(claimed_elsewhere)}"
    )


def ephemeral_port() -> int:
    """A free port from the kernel's ephemeral range (webserver and API ports in tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether we could bind host:port right now (SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _listeners(port: int) -> dict[int, str]:
    """pid -> 'pid N (cmd)' of the processes listening on TCP `port` ({} if we may not look)."""
    found = {}
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, PermissionError):
        return {}
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                continue
            try:
                cmd = " ".join(psutil.Process(conn.pid).cmdline())[:120]
            except psutil.Error:
                cmd = "?"
            found[conn.pid] = f"pid {conn.pid} ({cmd})"
    return found


def port_holder(port: int) -> str:
    """'pid 123 (python -m ...)' for the process listening on `port`, or '' if unknown."""
    return next(iter(_listeners(port).values()), "")


def other_listeners(port: int, own_pids: set[int]) -> list[str]:
    """Processes other than `own_pids` listening on `port`, as 'pid N (cmd)'.

    gRPC servers bind with SO_REUSEPORT, so a second server can share a port that was free when
    we checked; its requests would then land on either server at random.
    """
    return sorted(text for pid, text in _listeners(port).items() if pid not in own_pids)


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` itself has a listening TCP socket on `port`."""
    try:
        return any(
            c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
            for c in psutil.Process(pid).net_connections(kind="tcp")
        )
    except psutil.Error:
        return False
