"""The one module that uses private CPython `multiprocessing` internals (warm runs' forkserver).

Warm runs (warm_runs.py) fork multiprocessing's forkserver from a code server that has already
imported the location, so that each run worker starts from a warm copy. CPython has no public
way to hand multiprocessing a forkserver it did not start, so this module:
- runs `multiprocessing.forkserver.main(listener_fd, alive_r, preload, ...)` in the fork (the
  function is public in the module but undocumented);
- sets the `_forkserver_address`, `_forkserver_alive_fd` and `_forkserver_pid` fields of the
  module's `_forkserver` singleton, which is how `get_context("forkserver")` finds its server.

`interfaces_unchanged()` is the guard: warm runs check it at start and fall back to spawned
workers when it fails; tests/dataplatform/runtime/test_forked_servers.py runs warm runs for
real. No upstream issue found; public alternative would be a `ForkServer` constructor that
accepts an already running server's address.
"""

from __future__ import annotations

import inspect
import multiprocessing.forkserver as mp_forkserver

MAIN_PARAMETERS = ["listener_fd", "alive_r", "preload", "main_path", "sys_path"]
FIELDS = ("_forkserver_address", "_forkserver_alive_fd", "_forkserver_pid")


def interfaces_unchanged() -> str | None:
    """None when the internals look as this module uses them; else what changed."""
    if list(inspect.signature(mp_forkserver.main).parameters) != MAIN_PARAMETERS:
        return "multiprocessing.forkserver.main's signature changed"
    if not all(hasattr(mp_forkserver._forkserver, f) for f in FIELDS):
        return "multiprocessing.forkserver.ForkServer's fields changed"
    return None


def serve(listener_fd: int, alive_r: int) -> None:
    """Run multiprocessing's forkserver loop in this (freshly forked) process."""
    mp_forkserver.main(listener_fd, alive_r, preload=[])


def adopt(address: str, alive_fd: int, pid: int) -> None:
    """Make this process's forkserver context use the server at `address`."""
    server = mp_forkserver._forkserver
    server._forkserver_address = address
    server._forkserver_alive_fd = alive_fd
    server._forkserver_pid = pid
