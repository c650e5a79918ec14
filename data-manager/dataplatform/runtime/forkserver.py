"""The fork server: one pre-loaded parent that forks a code server per location on request.

    python -m dataplatform.runtime.forkserver FD PRELOAD    (started by dagster-init, fork mode)

Why: a plain `dagster api grpc` imports dagster (and, in a run-heavy location, dagster_dbt and
airbyte) on its own: 9-15 s and 216-232 MB per location here. This process imports those
libraries once; each code server is then a fork of it, ready in about a second, and the
libraries' pages stay shared copy-on-write between all of them.

Forking is only safe while this process has one thread and no gRPC objects, so it imports
libraries and nothing else: no channel, no server, no logging handler of its own, and never a
code location's module (the fork would inherit it, and Reload could not import it afresh).
Each request checks `threading.active_count() == 1` before forking.

Protocol, JSON lines over the socket whose fd dagster-init passes as FD:
- we send {"ready": true, "seconds": ..., "preloaded": [...], "failed": {...}} once imported;
- it sends {"args": [...grpc args], "location": ..., "log": path|null, "cwd": ..., "control": ...}
  and we answer {"pid": N} or {"error": "..."}.
EOF on the socket means dagster-init is gone, and we exit. Code servers do not die with us.

Each code server is a grandchild: we fork an intermediate that forks the server and exits at
once, so the server is re-parented to dagster-init (a child subreaper), which waits for it like
any child of its own. The server starts its own session, sends its output to the location's log,
and runs Dagster's own `dagster api grpc` command, with one change: ReloadCode asks dagster-init
to replace it by a fresh fork (see `install_reload_hook`).

The Dagster internals this needs (the command, ReloadCode, the modules to pre-load) are wrapped
in dataplatform.runtime.dagster_internals, which refuses any dagster but the pinned release.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable

from dataplatform.runtime import dagster_internals, warm_runs

# Always pre-imported in fork mode: what every code server runs before its location's code.
BASE_MODULES = dagster_internals.CODE_SERVER_MODULES
# What a code server imports lazily while it starts, pre-loaded too but not reported.
WARM_MODULES = (
    *dagster_internals.CODE_SERVER_LAZY_MODULES,
    "dagster_postgres",  # the platform's instance storage
    "upath",
)
# Native thread pools the libraries would start at import (numpy's OpenBLAS, pyarrow's jemalloc).
# They are fork-aware, but a parent without them is simpler to reason about; set while we
# pre-load, and restored in each code server so the runs it spawns get the user's values.
PARENT_ONLY_ENV = {"OPENBLAS_NUM_THREADS": "1", "ARROW_DEFAULT_MEMORY_POOL": "system"}
_saved_env: dict[str, str | None] = {}


def reset_logging(handler: bool = True) -> None:
    """Drop every handler (airbyte's CDK turns the root logger into JSON on stdout).

    Without `handler`, logging is as a fresh interpreter's: Dagster's own loggers add their
    handlers, and anything else at WARNING or above goes to stderr.
    """
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            for old in list(logger.handlers):
                logger.removeHandler(old)
    logging.getLogger().setLevel(logging.WARNING)
    if handler:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")


def preload(modules: list[str]) -> tuple[list[str], dict[str, str]]:
    """Import the libraries once; a missing optional one is reported, not fatal."""
    loaded, failed = [], {}
    for key, value in PARENT_ONLY_ENV.items():
        _saved_env[key] = os.environ.get(key)
        os.environ[key] = value
    for name in [*BASE_MODULES, *WARM_MODULES, *modules]:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except Exception as exc:  # e.g. airbyte absent from a slim image
            failed[name] = f"{type(exc).__name__}: {exc}"
    loaded = [name for name in loaded if name not in WARM_MODULES]
    dagster_internals.check_dagster_version()
    reset_logging()
    share_with_forks()
    return loaded, failed


def share_with_forks() -> None:
    """Keep the pre-loaded pages shared with every fork, and start what they would each start.

    - gc.freeze(): the collector would otherwise walk (and so copy, page by page) every object
      the parent imported, in every fork.
    - multiprocessing's resource tracker is a process (not a thread) that each code server
      starts when it first makes a spawn context's Event; started here, every fork inherits
      its pipe and shares the one tracker instead of running its own.
    """
    import gc
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    gc.collect()
    gc.freeze()


# ---- the code server (runs in the forked grandchild) ----------------------------------------


def _ask_supervisor(address: str, request: dict, timeout: float) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(json.dumps(request).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return json.loads(reply or b'{"ok": false, "error": "dagster-init closed the connection"}')


def _stop_listening(stop: Callable[[], None], port: int, timeout: float = 5.0) -> None:
    """Stop accepting connections (in-flight calls finish), and wait until the port is closed.

    Once ReloadCode returns, the webserver connects again; that connection must reach the
    replacement, which already listens on the same port (gRPC binds with SO_REUSEPORT).
    """
    import psutil

    stop()
    me = psutil.Process()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(
            c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
            for c in me.net_connections(kind="tcp")
        ):
            return
        time.sleep(0.02)


def install_reload_hook(location: str, port: int, address: str) -> None:
    """ReloadCode (the UI's Reload, GraphQL reloadRepositoryLocation) re-forks this location.

    `dagster api grpc` answers it with a warning only. Here the call asks dagster-init for a
    fresh fork of the location on the same port, waits until that one serves, then stops this
    server's listener and answers; the webserver then reconnects and reads the new code. Runs
    this server started keep running in this process, which exits once they finish.
    """

    def reload(logger: logging.Logger, stop_listening: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            reply = _ask_supervisor(
                address, {"op": "reload", "location": location, "pid": os.getpid()}, 120.0
            )
        except (OSError, ValueError) as exc:
            reply = {"ok": False, "error": f"cannot reach dagster-init: {exc}"}
        if reply.get("ok") and reply.get("kept"):
            # A reloadWorkspace after a live change asks every server; this one stays as it is.
            logger.info("Reload of %s: kept this server (%s)", location, reply["kept"])
        elif reply.get("ok"):
            logger.info(
                "Reload: pid %s now serves %s (%.1fs); this server stops listening",
                reply.get("pid"),
                location,
                time.monotonic() - started,
            )
            _stop_listening(stop_listening, port)
        else:
            logger.error("Reload of %s failed: %s", location, reply.get("error"))

    dagster_internals.replace_reload_code(reload)


def _serve(request: dict) -> int:
    """Run `dagster api grpc` with the request's arguments, in this process."""
    args = request["args"]
    if request.get("warm_runs"):
        warm_runs.install()
    if request.get("control"):
        install_reload_hook(
            request["location"], int(args[args.index("--port") + 1]), request["control"]
        )
    try:
        dagster_internals.serve_code_server(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _become_code_server(request: dict, control_fd: int) -> None:
    """In the grandchild: own session, own output and logging, then serve. Never returns."""
    code = 1
    try:
        os.close(control_fd)
        os.setsid()  # a session of its own: signals to dagster-init's group never reach it
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        if request.get("log"):
            out = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(
                out,
                f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start (forked, pid {os.getpid()}): "
                f"dagster api grpc {' '.join(request['args'])}\n".encode(),
            )
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.close(out)
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
        os.chdir(request["cwd"])
        for key, value in _saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_logging(handler=False)
        code = _serve(request)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            import multiprocessing

            for worker in multiprocessing.active_children():  # runs still in progress
                worker.join()
            warm_runs.cleanup()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            # Never run the parent's atexit handlers or return into its loop.
            os._exit(code)


def fork_code_server(request: dict, control_fd: int) -> dict:
    """Fork the code server as a grandchild (re-parented to the subreaper); its pid."""
    threads = threading.enumerate()
    if len(threads) != 1:
        names = ", ".join(t.name for t in threads)
        return {"error": f"fork server has {len(threads)} threads ({names}); refusing to fork"}
    read_end, write_end = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:
        try:
            os.close(read_end)
            server = os.fork()
            if server == 0:
                os.close(write_end)
                _become_code_server(request, control_fd)
            os.write(write_end, str(server).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        pid = pipe.read().decode()
    os.waitpid(intermediate, 0)
    return {"pid": int(pid)} if pid else {"error": "fork failed (see dagster-init's log)"}


# ---- the parent's loop ----------------------------------------------------------------------


def main(argv: list[str]) -> int:
    control_fd, modules = int(argv[0]), [m for m in argv[1].split(",") if m]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # dagster-init stops us (SIGTERM or EOF)
    reset_logging()
    started = time.monotonic()
    loaded, failed = preload(modules)
    conn = socket.socket(fileno=control_fd)
    reader = conn.makefile("rb")

    def send(message: dict) -> None:
        conn.sendall(json.dumps(message).encode() + b"\n")

    seconds = round(time.monotonic() - started, 2)
    threads = threading.active_count()
    send({"ready": True, "seconds": seconds, "preloaded": loaded, "failed": failed,
          "threads": threads, "os_threads": warm_runs.os_threads()})  # fmt: skip
    for line in reader:
        try:
            request = json.loads(line)
            top = request["args"][request["args"].index("--module-name") + 1].split(".")[0]
            if top in sys.modules and top not in ("dagster", "dagster_dbt", "airbyte"):
                # Inherited, so Reload would not pick up edits to it; say so, serve anyway.
                print(f"fork server: {top} is pre-imported; Reload will not see its changes",
                      file=sys.stderr)  # fmt: skip
            send(fork_code_server(request, control_fd))
        except Exception as exc:  # a bad request must not take every location's parent down
            send({"error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
