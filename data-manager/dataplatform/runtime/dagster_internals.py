"""The one module that touches Dagster's private API; every other module goes through it.

Dagster is pinned exactly (pyproject.toml) and `check_dagster_version` refuses any other
release; tests/dataplatform/runtime/test_dagster_internals.py runs each wrapped piece and fails
when a release changes what the platform relies on. Importing this module imports nothing of
Dagster: every private import below is inside the function (or, for the classes the compute log
manager and the run launcher build on, the module `__getattr__`) that needs it, so the fork
server, the daemon wrapper and the CLI pay for what they use only.

Private APIs wrapped here, each with what would make it unnecessary:

- `dagster._cli.api.grpc_command` (`serve_code_server`): the `dagster api grpc` command, run in
  a forked process. No upstream issue found; public alternative would be a documented function
  that serves a code location in the calling process.
- `DagsterApiServer.ReloadCode`, its `_logger` and `_server_termination_event`
  (`replace_reload_code`): the fork server re-forks a location on Reload. No upstream issue
  found; public alternative would be a ReloadCode hook (or a `dagster api grpc` option) that
  restarts the server process. Related: dagster-io/dagster#12581 (reload definitions when the
  gRPC server is managed outside the webserver; closed).
- `DagsterApiServer._mp_ctx` (`start_run_workers_with`, `run_worker_context_unchanged`): the
  multiprocessing context through which StartRun starts run workers (spawn). Upstream:
  dagster-io/dagster#8638 (pre-load the code location for forkserver run workers; open). Public
  alternative would be a start-method option on `dagster api grpc`.
- `dagster._grpc.server_watcher.WATCH_INTERVAL` (`set_code_server_watch_interval`): how often
  the webserver and the daemon poll each code server. No upstream issue found; public
  alternative would be an env var or workspace setting for the watch interval (as
  dagster-io/dagster#32557 did for the proxy heartbeat TTL).
- `dagster._daemon.controller`: `DagsterDaemonController.check_workspace_freshness`, its
  `_workspace_process_context`, and `THREAD_CHECK_INTERVAL` (`watch_daemon_workspace`,
  `daemon_locations`), and `dagster._daemon.cli.main` (`run_daemon`). Upstream:
  dagster-io/dagster#32693 (expose RELOAD_WORKSPACE_INTERVAL; open, for #32677). Public
  alternative would be that setting plus a refresh when the workspace file changes.
- Compute log manager base classes (`TruncatingCloudStorageComputeLogManager`,
  `PollingComputeLogSubscriptionManager`, `LocalComputeLogManager`, `IO_TYPE_EXTENSION`,
  `ComputeIOType`, `CapturedLogSubscription`, `pg_config`, `ConfigurableClass`,
  `ConfigurableClassData`) and their `_truncated`, `_instance_weakref` attributes
  (`truncated_logs`, `instance_of`). No upstream issue found; Dagster's own cloud compute log
  managers build on these, but they live in private modules; public alternative would be
  exporting them (e.g. from `dagster`).
- Run launcher health check (`CheckRunHealthResult`, `WorkerStatus`), the launcher's
  `_get_grpc_client_for_termination` and `_instance`, and `DagsterGrpcClient.get_current_runs`
  with `GetCurrentRunsResult` (`run_code_server`, `current_runs`, `registered_instance`). No
  upstream issue found; public alternative would be `DefaultRunLauncher` answering
  `check_run_worker_health` itself.
- `UnresolvedAssetJobDefinition` (type only): what `define_asset_job` returns. No upstream issue
  found; public alternative would be exporting that type from `dagster`.
- Module names: `CODE_SERVER_MODULES` and `CODE_SERVER_LAZY_MODULES` (what the fork server
  pre-imports). No upstream issue found; public alternative would be a documented preload list.
  (dagster.yaml names the run coordinator's module as public `dagster`, which exports it.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as UnresolvedAssetJobDefinition,
    )

# The release whose internals this module was written and tested against (pyproject pins it).
SUPPORTED_DAGSTER_VERSION = "1.13.27"


class UnsupportedDagsterVersion(RuntimeError):
    pass


def check_dagster_version(version: str | None = None) -> None:
    """Refuse any dagster but the pinned one: the internals below are that release's."""
    if version is None:
        from dagster.version import __version__ as version
    if version != SUPPORTED_DAGSTER_VERSION:
        raise UnsupportedDagsterVersion(
            f"dataplatform.runtime.dagster_internals is written against dagster "
            f"{SUPPORTED_DAGSTER_VERSION}, but {version} is installed. Fix: install the version "
            "pinned in pyproject.toml (`uv sync --frozen`), or re-check the internals it uses "
            "(tests/dataplatform/runtime/test_dagster_internals.py) and update the pin"
        )


# ---- module names -----------------------------------------------------------------------------

# What every code server runs before its location's code: the command and the server.
CODE_SERVER_MODULES = ("dagster", "dagster._cli.api", "dagster._grpc.server")
# What a code server imports lazily while it starts (its instance's storage, the repository
# data builder): measured with a diff of sys.modules, about 5 s per start when not pre-loaded.
CODE_SERVER_LAZY_MODULES = (
    "dagster._core.instance.factory",
    "dagster._core.storage.root",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "dagster._daemon.controller",
    "dagster._scheduler.scheduler",
    "dagster._core.definitions.repository_definition.repository_data_builder",
    "dagster._core.definitions.external_asset",
    "dagster._core.types.transform_typing",
    "dagster._core.assets",
    "dagster._utils.test.definitions",
)


# ---- the code server (fork mode) --------------------------------------------------------------


def serve_code_server(args: list[str]) -> None:
    """Run `dagster api grpc ARGS` in this process until the server stops."""
    from dagster._cli.api import grpc_command

    grpc_command.main(args=args, prog_name="dagster api grpc", standalone_mode=False)


def replace_reload_code(reload: Callable[[logging.Logger, Callable[[], None]], None]) -> None:
    """ReloadCode calls `reload(server_logger, stop_listening)`, then answers the caller.

    `stop_listening()` stops the server accepting connections; calls in flight finish, and
    `serve_code_server` returns once the server has stopped.
    """
    from dagster._grpc.__generated__ import dagster_api_pb2
    from dagster._grpc.server import DagsterApiServer

    def reload_code(self, _request, _context):
        reload(self._logger, self._server_termination_event.set)
        return dagster_api_pb2.ReloadCodeReply()

    DagsterApiServer.ReloadCode = reload_code


def run_worker_context_unchanged() -> str | None:
    """None when StartRun still starts run workers through `self._mp_ctx`; else what changed.

    Read from StartRun's source: proving it by running needs a served location, an instance and
    a run, which a code server cannot afford at every start. The test module proves it by
    running (test_dagster_internals.py, and test_forked_servers.py's warm-run test).
    """
    import inspect

    from dagster._grpc.server import DagsterApiServer

    if "self._mp_ctx" not in inspect.getsource(DagsterApiServer.StartRun):
        return "DagsterApiServer.StartRun no longer starts workers through self._mp_ctx"
    return None


def start_run_workers_with(context: Callable[[], Any], started: Callable[[], None]) -> None:
    """Each code server constructed from now on starts its run workers through `context()`.

    `started()` is called once per server (a line in the location's log)."""
    from dagster._grpc import server as grpc_server

    api_server_init = grpc_server.DagsterApiServer.__init__

    def init(self, *args, **kwargs):
        api_server_init(self, *args, **kwargs)
        self._mp_ctx = context()
        started()

    grpc_server.DagsterApiServer.__init__ = init


# ---- the webserver's and the daemon's code-server watch ---------------------------------------


def set_code_server_watch_interval(seconds: float) -> None:
    """Watch threads started from now on poll their code server every `seconds`."""
    from dagster._grpc import server_watcher

    server_watcher.WATCH_INTERVAL = seconds


# ---- the daemon -------------------------------------------------------------------------------

# check(last_update, stock_check, controller) -> the new last_update
WorkspaceCheck = Callable[[float, Callable[[float], float], Any], float]


def watch_daemon_workspace(check: WorkspaceCheck, interval: float) -> None:
    """The daemon controller's workspace freshness check becomes `check`, run every `interval`.

    `check` gets the last update time, the stock check (which refreshes when the time is older
    than its interval, and returns the new time) and the controller (for `daemon_locations`).
    """
    from dagster._daemon import controller

    stock = controller.DagsterDaemonController.check_workspace_freshness

    def check_workspace_freshness(self, last_workspace_update_time: float) -> float:
        return check(last_workspace_update_time, lambda last: stock(self, last), self)

    controller.DagsterDaemonController.check_workspace_freshness = check_workspace_freshness
    controller.THREAD_CHECK_INTERVAL = interval


def daemon_locations(controller: Any) -> dict[str, bool]:
    """The locations of the daemon's current workspace: name -> loaded (no load error)."""
    workspace = controller._workspace_process_context.get_current_workspace()
    return {
        name: entry.load_error is None for name, entry in workspace.code_location_entries.items()
    }


def run_daemon() -> None:
    """The stock `dagster-daemon` command, on sys.argv."""
    from dagster._daemon.cli import main

    main()


# ---- instance-bound objects (compute log manager, run launcher) -------------------------------


def instance_of(configurable: Any) -> Any | None:
    """The DagsterInstance a run launcher or compute log manager is registered with, or None."""
    return configurable._instance_weakref() if configurable.has_instance else None


def registered_instance(launcher: Any) -> Any:
    """The run launcher's DagsterInstance; Dagster's own error when it has none."""
    return launcher._instance


def truncated_logs(manager: Any) -> set:
    """The (log key, io type) pairs TruncatingCloudStorageComputeLogManager stopped uploading."""
    return manager._truncated


def run_code_server(launcher: Any, run_id: str) -> Any | None:
    """A gRPC client of the code server that started the run (from its tag), or None."""
    return launcher._get_grpc_client_for_termination(run_id)


def current_runs(client: Any) -> list[str]:
    """The ids of the runs the code server behind `client` executes now."""
    from dagster import deserialize_value
    from dagster._grpc.types import GetCurrentRunsResult

    return deserialize_value(client.get_current_runs(), GetCurrentRunsResult).current_runs


# Names other modules subclass, construct or annotate with, imported on first use (PEP 562).
_LAZY_MODULES = {
    "dagster._core.launcher.base": ("CheckRunHealthResult", "WorkerStatus"),
    "dagster._core.storage.cloud_storage_compute_log_manager": (
        "TruncatingCloudStorageComputeLogManager",
        "PollingComputeLogSubscriptionManager",
    ),
    "dagster._core.storage.compute_log_manager": ("CapturedLogSubscription", "ComputeIOType"),
    "dagster._core.storage.config": ("pg_config",),
    "dagster._core.storage.local_compute_log_manager": (
        "IO_TYPE_EXTENSION",
        "LocalComputeLogManager",
    ),
    "dagster._serdes": ("ConfigurableClass", "ConfigurableClassData"),
    "dagster._core.definitions.unresolved_asset_job_definition": ("UnresolvedAssetJobDefinition",),
}
_LAZY_NAMES = {name: module for module, names in _LAZY_MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
