"""How often the webserver and the daemon ask each code server whether it changed.

Dagster's webserver and daemon each keep one watch thread per `grpc_server` location that
calls the server's GetServerId every `WATCH_INTERVAL` (1 s, dagster/_grpc/server_watcher.py),
over a new channel each time. That notices a restarted or replaced server within a second. The
cost, measured here with one location: an idle code server uses 0.2 % of a core; each 1 s
watcher adds about 0.35 % in the watching process and 0.1 % in the server. With two watchers
per location that is most of the platform's idle CPU at 30 locations (bench/platform_startup.py
prints it per process).

The platform does not depend on that second: dagster-init's Reload, restarts and live
reconcile tell the webserver themselves (ReloadCode, reloadWorkspace), so a slower watch only
delays how soon the UI notices a server that changed behind its back. The interval is
DAGSTER_GRPC_WATCH_SECONDS (default 10).

Dagster has no public setting for it: dataplatform.runtime.dagster_internals sets the private
module constant, read when each watch thread starts, and its tests fail when that changes.
"""

from __future__ import annotations


def apply() -> float:
    """Set the watch interval for the watch threads this process will start; the interval."""
    from dataplatform import settings
    from dataplatform.runtime import dagster_internals

    dagster_internals.check_dagster_version()
    interval = settings.grpc_watch().interval
    dagster_internals.set_code_server_watch_interval(interval)
    return interval
