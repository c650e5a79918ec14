"""Warm runs: a forked code server's run workers are forks of a pre-loaded process.

Dagster's code server starts every run worker through multiprocessing's *spawn* context
(`DagsterApiServer.StartRun`: `self._mp_ctx.Process(target=start_run_in_subprocess, ...)`). A
spawned worker is a fresh interpreter: it imports dagster, airbyte, dagster_dbt and dbt again,
which is most of a small run's time.

In fork mode the code server is itself a fork of the pre-loaded fork server, so it already has
those libraries. Before it starts Dagster's server (so while it still has a single thread), it
forks once more: that child becomes the location's *run forkserver*, running the standard
library's forkserver loop (`multiprocessing.forkserver.main`). Dagster's server then gets
multiprocessing's forkserver context, pointed at that child. From then on `StartRun` works
unchanged, but each run worker is a fork of a process with the libraries imported, and
receives the run's arguments exactly as a spawned worker would (pickled over a pipe); it
imports the location's own code itself (0.07 s for sample_product_sync), from disk, as a
spawned worker does. The run's events, its compute logs, run monitoring and termination from
the UI (Dagster's termination event) are all as before.

Why fork before the location loads: the run forkserver then touches nothing and stays a page-
for-page copy of the fork server, shared copy-on-write; forked later, it would keep its own
copies of every page the serving code server has written to since. Why a forkserver rather
than forking the code server per run: by then the code server runs gRPC's threads, and a fork
of a multi-threaded process can inherit a held lock. The run forkserver has one thread for its
whole life; it only forks.

Reload re-forks the code server (see forkserver.install_reload_hook), and the new server has a
new run forkserver. If the run forkserver dies, multiprocessing starts its standard one (a cold
interpreter) and runs keep working, without the warm start.

Private APIs used, guarded by `check_dagster_version` and by `interfaces_unchanged` (refusal
falls back to spawned workers, with a line in the location's log);
tests/dataplatform/runtime/test_dagster_internals.py and test_forked_servers.py fail when they
change:
- Dagster: the multiprocessing context through which StartRun starts its workers (wrapped in
  dataplatform.runtime.dagster_internals);
- CPython 3.11: multiprocessing's forkserver loop and the fields through which it finds its
  server (wrapped in dataplatform.runtime.multiprocessing_internals).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import threading

from dataplatform.runtime import dagster_internals, multiprocessing_internals

_state: dict = {"pid": None, "dir": None}


def os_threads() -> int:
    """The OS threads of this process (native ones included), which a fork must not have."""
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1


def interfaces_unchanged() -> str | None:
    """None when the internals we rely on look as written; else what changed."""
    return (
        multiprocessing_internals.interfaces_unchanged()
        or dagster_internals.run_worker_context_unchanged()
    )


def start_run_forkserver() -> int | None:
    """Fork the run forkserver from this (single-threaded) process; its pid, or None."""
    if _state["pid"] is not None:
        return _state["pid"]
    if threading.active_count() != 1 or os_threads() != 1:
        print(f"warm runs: off, this process already has {os_threads()} threads; runs are "
              "spawned", file=sys.stderr)  # fmt: skip
        return None
    # A socket in a private directory: whoever can connect can make it run any pickle.
    directory = tempfile.mkdtemp(prefix="dataplatform-runs-")
    address = os.path.join(directory, "forkserver.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(address)
    os.chmod(address, 0o600)
    listener.listen()
    # Everyone holding the write end keeps the forkserver alive: this server and each worker.
    alive_r, alive_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(alive_w)
            multiprocessing_internals.serve(listener.fileno(), alive_r)
            code = 0
        except SystemExit:  # the loop's way to stop: every client is gone
            code = 0
        finally:
            os._exit(code)
    listener.close()
    os.close(alive_r)
    multiprocessing_internals.adopt(address, alive_w, pid)
    _state.update(pid=pid, dir=directory)
    return pid


def cleanup() -> None:
    """Remove the socket's directory (the code server exits with os._exit, skipping atexit)."""
    if _state["dir"]:
        shutil.rmtree(_state["dir"], ignore_errors=True)


def install() -> bool:
    """Make this code server's runs warm; False (runs spawned as usual) when we cannot.

    Called in the code server before Dagster's server starts (forkserver._serve)."""
    dagster_internals.check_dagster_version()
    problem = interfaces_unchanged()
    if problem:
        print(f"warm runs: off, {problem}; runs are spawned", file=sys.stderr)
        return False

    if start_run_forkserver() is None:
        return False
    dagster_internals.start_run_workers_with(
        lambda: multiprocessing.get_context("forkserver"),
        lambda: print(f"warm runs: run workers fork from pid {_state['pid']}", file=sys.stderr),
    )
    return True
