"""The private Dagster API the platform wraps in dataplatform.runtime.dagster_internals still does
what the platform relies on. Each test runs the wrapped piece; a Dagster release that renames,
moves or changes one fails here, before any platform process does.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import time
import types
import uuid

import dagster
import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, serialize_value

from dataplatform.runtime import dagster_internals
from pyairbyte import settings
from tests.helpers import wait_until
from tests.ports import free_code_location_ports

# ---- the version guard --------------------------------------------------------------------------


def test_the_installed_dagster_is_the_pinned_one():
    dagster_internals.check_dagster_version()
    assert dagster.__version__ == dagster_internals.SUPPORTED_DAGSTER_VERSION


def test_another_release_is_refused_with_the_fix():
    with pytest.raises(dagster_internals.UnsupportedDagsterVersion) as refused:
        dagster_internals.check_dagster_version("1.14.0")
    message = str(refused.value)
    assert "1.14.0" in message and dagster_internals.SUPPORTED_DAGSTER_VERSION in message
    assert "uv sync --frozen" in message


def _another_release(monkeypatch) -> None:
    import dagster.version

    monkeypatch.setattr(dagster.version, "__version__", "1.14.0")


@pytest.mark.parametrize(
    "entry",
    ["grpc_watch", "warm_runs", "dagster_daemon", "run_launcher", "compute_logs"],
)
def test_every_user_of_the_internals_refuses_another_release(entry, monkeypatch):
    """Each entry point checks before it patches or subclasses anything of Dagster's."""
    from dataplatform.runtime import dagster_daemon, grpc_watch, warm_runs
    from dataplatform.runtime.compute_logs import PostgresComputeLogManager
    from dataplatform.runtime.run_launcher import MonitoredRunLauncher

    calls = {
        "grpc_watch": grpc_watch.apply,
        "warm_runs": warm_runs.install,
        "dagster_daemon": lambda: dagster_daemon.main(["run"]),
        "run_launcher": MonitoredRunLauncher,
        "compute_logs": lambda: PostgresComputeLogManager(postgres_url="postgresql://unused"),
    }
    _another_release(monkeypatch)
    with pytest.raises(dagster_internals.UnsupportedDagsterVersion):
        calls[entry]()


# ---- imports ------------------------------------------------------------------------------------


def test_importing_the_adapter_and_the_light_modules_imports_no_dagster():
    """The fork server, the daemon wrapper and the CLI's helm step start without dagster."""
    code = (
        "import sys\n"
        "import dataplatform.runtime.dagster_internals, dataplatform.runtime.forkserver\n"
        "import dataplatform.runtime.grpc_watch, dataplatform.runtime.dagster_daemon\n"
        "import dataplatform.runtime.helm_values\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('dagster')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_module_names_it_gives_are_importable():
    for name in (
        *dagster_internals.CODE_SERVER_MODULES,
        *dagster_internals.CODE_SERVER_LAZY_MODULES,
    ):
        importlib.import_module(name)


def test_the_lazy_names_resolve_and_others_do_not():
    for name in dagster_internals._LAZY_NAMES:
        assert getattr(dagster_internals, name) is not None, name
    assert dagster_internals.UnresolvedAssetJobDefinition is type(
        dagster.define_asset_job("any_job", selection="*")
    )
    with pytest.raises(AttributeError):
        dagster_internals.NoSuchName  # noqa: B018


# ---- the code-server watch ----------------------------------------------------------------------


def test_the_watch_interval_is_what_a_new_watch_thread_polls_at(monkeypatch):
    """Started as the webserver's workspace starts it (no interval given), a watch thread asks
    its server for the id at the interval set through the adapter."""
    from dagster._grpc import server_watcher
    from dagster._grpc.client import DagsterGrpcClient

    monkeypatch.setattr(server_watcher, "WATCH_INTERVAL", server_watcher.WATCH_INTERVAL)

    def polls_in_one_second(interval: float) -> int:
        dagster_internals.set_code_server_watch_interval(interval)
        client = DagsterGrpcClient(port=1, host="127.0.0.1")
        asked: list[float] = []
        client.get_server_id = lambda timeout=None: asked.append(time.monotonic()) or "server-a"
        ignore = lambda *args: None  # noqa: E731
        shutdown, thread = server_watcher.create_grpc_watch_thread(
            "loc", client, get_location_entry=ignore, refresh_code_location=ignore,
            on_disconnect=ignore, on_reconnected=ignore, on_updated=ignore, on_error=ignore,
        )  # fmt: skip
        thread.start()
        time.sleep(1.0)
        shutdown.set()
        thread.join(5)
        return len(asked)

    assert polls_in_one_second(0.05) >= 6
    assert polls_in_one_second(30) == 1


# ---- the daemon ---------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def test_the_daemon_loop_runs_the_wrapped_check_at_the_interval(monkeypatch):
    from dagster._daemon import controller

    cls = controller.DagsterDaemonController
    monkeypatch.setattr(cls, "check_workspace_freshness", cls.check_workspace_freshness)
    monkeypatch.setattr(controller, "THREAD_CHECK_INTERVAL", controller.THREAD_CHECK_INTERVAL)
    slept: list[float] = []
    monkeypatch.setattr(controller, "time", types.SimpleNamespace(
        time=time.time, sleep=slept.append))  # fmt: skip
    stock_answers: list[float] = []

    def check(last_update, stock_check, daemon):
        assert daemon is fake
        stock_answers.append(stock_check(last_update))  # fresh: no refresh, same time back
        raise _Stop

    dagster_internals.watch_daemon_workspace(check, 0.25)
    workspace = types.SimpleNamespace(
        refresh_workspace=lambda: pytest.fail("a fresh workspace was refreshed"),
        code_location_entries={
            "ok": types.SimpleNamespace(load_error=None),
            "bad": types.SimpleNamespace(load_error="boom"),
        },
    )
    workspace.get_current_workspace = lambda: workspace
    fake = object.__new__(cls)  # the attributes the loop and the stock check read, no threads
    fake.check_daemon_threads = lambda: None
    fake._grpc_server_registry = None
    fake._workspace_process_context = workspace
    fake._logger = None
    started = time.time()
    with pytest.raises(_Stop):
        fake.check_daemon_loop()
    assert slept == [0.25]
    assert len(stock_answers) == 1 and stock_answers[0] >= started
    assert dagster_internals.daemon_locations(fake) == {"ok": True, "bad": False}


def test_run_daemon_is_the_dagster_daemon_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["dagster-daemon", "--help"])
    with pytest.raises(SystemExit) as done:
        dagster_internals.run_daemon()
    assert done.value.code == 0
    assert "liveness-check" in capsys.readouterr().out


# ---- instance-bound objects ---------------------------------------------------------------------


@pytest.fixture
def instance(tmp_path):
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        yield instance


def test_a_launchers_instance_and_its_runs_code_server(instance):
    """The code server a run was launched on (the launcher's tag) is the one asked about it."""
    from dagster._core.remote_origin import (
        GrpcServerCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._grpc.types import StartRunResult

    from dataplatform.runtime.run_launcher import MonitoredRunLauncher

    launcher = MonitoredRunLauncher()
    with pytest.raises(Exception):  # noqa: B017 - Dagster's own error for an unregistered one
        dagster_internals.registered_instance(launcher)
    launcher.register_instance(instance)
    assert dagster_internals.registered_instance(launcher) is instance
    assert dagster_internals.instance_of(launcher) is instance

    origin = RemoteJobOrigin(
        RemoteRepositoryOrigin(
            GrpcServerCodeLocationOrigin(host="127.0.0.1", port=4321, location_name="loc"),
            "__repository__",
        ),
        "a_job",
    )
    run = instance.add_run(DagsterRun(job_name="a_job", run_id=str(uuid.uuid4()),
                                      status=DagsterRunStatus.STARTING,
                                      remote_job_origin=origin))  # fmt: skip
    assert dagster_internals.run_code_server(launcher, run.run_id) is None  # not launched yet
    server = DagsterGrpcClient(port=4321, host="127.0.0.1")
    server.start_run = lambda args: serialize_value(
        StartRunResult(success=True, message=None, serializable_error_info=None)
    )
    launcher.launch_run_from_grpc_client(instance, run, server)
    client = dagster_internals.run_code_server(launcher, run.run_id)
    assert (client.host, client.port) == ("127.0.0.1", 4321)


def test_a_compute_log_managers_instance_and_truncated_logs(instance):
    from dataplatform.runtime.compute_logs import PostgresComputeLogManager

    manager = PostgresComputeLogManager(postgres_url="postgresql://unused")
    assert dagster_internals.instance_of(manager) is None
    manager.register_instance(instance)
    assert dagster_internals.instance_of(manager) is instance
    assert dagster_internals.truncated_logs(manager) == set()


# ---- a code server: serve, StartRun's workers, GetCurrentRuns, ReloadCode -----------------------

SERVER = textwrap.dedent("""
    import json, os, queue, sys, threading

    from dagster._grpc.impl import StartRunInSubprocessSuccessful

    from dataplatform.runtime import dagster_internals

    port, record, alive = sys.argv[1:4]


    def note(**event):
        with open(record, "a") as out:
            out.write(json.dumps(event) + "\\n")


    class Worker:
        \"\"\"Stands for a run worker: reports its start, lives while `alive` exists.\"\"\"

        pid, exitcode = None, None

        def __init__(self, target, args):
            note(event="worker", target=target.__name__)
            self.events = args[2]

        def start(self):
            note(event="start")
            self.events.put(StartRunInSubprocessSuccessful())

        def is_alive(self):
            return os.path.exists(alive)

        def join(self, timeout=None):
            pass


    class Context:
        Queue, Event = queue.Queue, threading.Event
        Process = Worker


    def reload(logger, stop_listening):
        logger.info("reload hook called")
        note(event="reload")
        stop_listening()


    dagster_internals.start_run_workers_with(Context, lambda: note(event="server"))
    dagster_internals.replace_reload_code(reload)
    dagster_internals.serve_code_server(["--module-name", "tests.fixture_locations.alpha",
                                         "--host", "127.0.0.1", "--port", port])
    note(event="served")
""")


def _events(record) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_a_code_server_starts_workers_through_the_context_and_reloads_through_the_hook(
    tmp_path, instance
):
    from dagster._core.remote_origin import (
        GrpcServerCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._grpc.types import ExecuteExternalJobArgs, StartRunResult

    assert dagster_internals.run_worker_context_unchanged() is None
    [port] = free_code_location_ports(1)
    record, alive = tmp_path / "events.jsonl", tmp_path / "alive"
    alive.touch()
    env = {**os.environ, "DAGSTER_HOME": instance.root_directory,
           "PYTHONPATH": os.pathsep.join([str(settings.app_root()),
                                          os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    log = open(tmp_path / "server.log", "wb")  # closed below
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(record), str(alive)],
        env=env, cwd=settings.app_root(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")

        def serving() -> bool:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                client.ping("up")
                return True
            except Exception:
                return False

        wait_until(serving, 120, "the code server to serve")
        assert {"event": "server"} in _events(record)

        origin = RemoteJobOrigin(RemoteRepositoryOrigin(
            GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port, location_name="alpha"),
            "__repository__"), "alpha_job")  # fmt: skip
        run_id = str(uuid.uuid4())
        started = dagster.deserialize_value(
            client.start_run(ExecuteExternalJobArgs(job_origin=origin, run_id=run_id,
                                                    instance_ref=instance.get_ref())),
            StartRunResult,
        )  # fmt: skip
        assert started.success, started
        assert _events(record)[1:] == [
            {"event": "worker", "target": "start_run_in_subprocess"}, {"event": "start"},
        ]  # fmt: skip
        assert run_id in dagster_internals.current_runs(client)

        alive.unlink()  # the worker ends; the server may stop
        client.reload_code(timeout=30)
        assert server.wait(timeout=60) == 0, (tmp_path / "server.log").read_text()
        assert [e["event"] for e in _events(record)][-2:] == ["reload", "served"]
        assert "reload hook called" in (tmp_path / "server.log").read_text()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 9)
            server.wait()
        log.close()
