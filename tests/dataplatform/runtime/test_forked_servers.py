"""Fork mode with real processes: runs are warm forks, crashes stay local, the fork server
recovers, Reload reloads.

One dagster-init in fork mode serves two fixture locations and one whose source lives in a
temporary package (so a test can edit it), with a webserver in front for the GraphQL Reload.
The tests run in order: Reload, a killed code server, a killed fork server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from dataplatform.runtime import forkserver
from dataplatform.runtime.dagster_graphql import DagsterGraphQL
from dataplatform.runtime.processes import ephemeral_port, terminate
from pyairbyte import settings
from tests.dataplatform.runtime.test_supervisor import SCRIPT, Supervised, wait_until
from tests.ports import free_code_location_ports, stop_recorded_processes

EDITABLE = "fork_test_editable_location"
DESCRIPTION_QUERY = "{ assetNodes { assetKey { path } description } }"


def write_editable(package_dir, description: str) -> None:
    (package_dir / f"{EDITABLE}.py").write_text(
        textwrap.dedent(f'''
            import json
            import os
            import time

            from dagster import Definitions, asset, define_asset_job, in_process_executor

            IMPORTED_IN = os.getpid()  # the process that imported this module


            @asset(description="{description}")
            def editable_numbers() -> list[int]:
                return [1, 2, 3]


            @asset
            def where_it_ran() -> None:
                with open(os.environ["WARM_RUN_REPORT"], "w") as out:
                    json.dump({{"pid": os.getpid(), "ppid": os.getppid(),
                               "imported_in": IMPORTED_IN}}, out)


            @asset
            def waits_until_terminated() -> None:
                while True:
                    time.sleep(0.2)


            defs = Definitions(
                assets=[editable_numbers, where_it_ran, waits_until_terminated],
                jobs=[define_asset_job("where_job", [where_it_ran]),
                      define_asset_job("wait_job", [waits_until_terminated])],
                executor=in_process_executor,
            )
        ''')
    )


def test_the_grpc_command_takes_the_arguments_dagster_init_passes():
    """Serving, the reload hook and the run-worker context are run in test_dagster_internals.py;
    here the command's options and the standard library's forkserver loop warm runs reuse."""
    from dagster._cli.api import grpc_command

    from dataplatform.runtime import warm_runs

    options = {p.name for p in grpc_command.params}
    assert {"module_name", "host", "port", "location_name", "lazy_load_user_code"} <= options
    assert warm_runs.interfaces_unchanged() is None


def test_the_fork_server_preloads_libraries_only():
    assert all(not m.startswith(("dagster_code", "tests")) for m in forkserver.BASE_MODULES)
    assert settings_preload_default() == [
        "dagster", "dagster_dbt", "dbt.cli.main", "dbt.adapters.postgres", "airbyte",
    ]  # fmt: skip


def settings_preload_default() -> list[str]:
    from dataplatform.settings import SupervisorSettings

    return SupervisorSettings().preload_modules()


@pytest.fixture(scope="module")
def supervised(tmp_path_factory):
    """dagster-init (fork mode) + a webserver; named `supervised` for the platform tier."""
    tmp = tmp_path_factory.mktemp("forked")
    package_dir = tmp / "code"
    package_dir.mkdir()
    write_editable(package_dir, "version one")
    alpha, beta, editable = free_code_location_ports(3)
    ports = {"alpha": alpha, "beta": beta, "editable": editable}
    modules = {"alpha": "tests.fixture_locations.alpha", "beta": "tests.fixture_locations.beta",
               "editable": EDITABLE}  # fmt: skip
    config = tmp / "code-locations.json"
    config.write_text(json.dumps({"code_locations": [
        {"name": n, "module": modules[n], "port": p} for n, p in ports.items()
    ]}))  # fmt: skip
    (tmp / "workspace.yaml").write_text(
        "load_from:\n"
        + "".join(
            f"  - grpc_server: {{host: 127.0.0.1, port: {p}, location_name: {n}}}\n"
            for n, p in ports.items()
        )
    )
    platform_dir = tmp / "platform"
    env = {
        **os.environ,
        "CODE_LOCATIONS_FILE": str(config),
        "DATAPLATFORM_PLATFORM_DIR": str(platform_dir),
        "DAGSTER_HOME": str(tmp / "dagster_home"),
        "DAGSTER_INIT_BACKOFF_MAX": "3",
        "DAGSTER_INIT_MODE": "fork",
        "DAGSTER_INIT_PRELOAD": "none",
        "PYTHONPATH": os.pathsep.join([str(package_dir), os.environ.get("PYTHONPATH", "")]),
        "WARM_RUN_REPORT": str(tmp / "warm-run.json"),
    }
    (tmp / "dagster_home").mkdir()
    # No daemon here: runs launch at once (the platform queues them for its daemon).
    (tmp / "dagster_home" / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n"
        "  class: DefaultRunCoordinator\ntelemetry:\n  enabled: false\n"
    )
    subprocess.run([sys.executable, "-m", "dagster", "instance", "migrate"], env=env,
                   check=True, capture_output=True)  # fmt: skip
    sup = Supervised(platform_dir, tmp / "dagster-init.log", ports, blocker=None)
    sup.package_dir = package_dir
    sup.report = tmp / "warm-run.json"
    web_port = ephemeral_port()
    with open(sup.log_path, "wb") as log:
        sup.proc = subprocess.Popen(["bash", str(SCRIPT)], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    with open(tmp / "webserver.log", "wb") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(web_port),
             "-w", str(tmp / "workspace.yaml")],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=settings.app_root(),
        )  # fmt: skip
    sup.graphql = DagsterGraphQL(f"http://127.0.0.1:{web_port}")
    try:
        wait_until(lambda: sup.status().get("initial_round_complete"), 180, "the first round")
        loaded = sup.graphql.wait_for_locations(list(ports), timeout=120)
        assert all(loaded[n].loaded for n in ports), loaded
        yield sup
    finally:
        terminate(web.pid, timeout=20, popen=web)
        if sup.proc.poll() is None:
            sup.proc.send_signal(signal.SIGTERM)
            try:
                sup.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                sup.proc.kill()
        stop_recorded_processes(platform_dir)


def description(sup) -> str:
    nodes = sup.graphql.query(DESCRIPTION_QUERY)["assetNodes"]
    return next(n["description"] for n in nodes if n["assetKey"]["path"] == ["editable_numbers"])


def pids(sup) -> dict[str, int]:
    return {name: info["pid"] for name, info in sup.status()["locations"].items()}


def test_every_location_is_a_fork_served_and_loaded(supervised):
    status = supervised.status()
    assert status["mode"] == "fork"
    parent = status["fork_server"]["pid"]
    assert status["fork_server"]["state"] == "ready"
    for name, pid in pids(supervised).items():
        assert supervised.location(name)["state"] == "ready"
        # Same program as the parent (a fork), and not the parent's child: dagster-init's.
        assert psutil.Process(pid).cmdline() == psutil.Process(parent).cmdline()
        assert psutil.Process(pid).ppid() == supervised.proc.pid
        assert os.getsid(pid) == pid  # its own session
    assert description(supervised) == "version one"


def test_a_run_forks_from_its_code_servers_warm_process(supervised):
    """The run worker is a fork of the run forkserver, itself a fork of the code server taken
    before Dagster's server started: the worker does not start a fresh interpreter."""
    server = supervised.location("editable")["pid"]
    started = time.monotonic()
    run = supervised.graphql.launch_run("editable", "where_job")
    [done] = supervised.graphql.wait_for_runs([run], timeout=120, poll=0.1)
    print(f"trivial warm run, launch to SUCCESS: {time.monotonic() - started:.2f}s")
    assert done.status == "SUCCESS"
    seen = json.loads(supervised.report.read_text())
    run_forkserver = psutil.Process(seen["ppid"])
    assert run_forkserver.ppid() == server
    assert run_forkserver.cmdline() == psutil.Process(server).cmdline()
    assert seen["imported_in"] == seen["pid"]  # the location's code: read by the run itself
    assert (
        "warm runs: run workers fork from pid"
        in (supervised.platform_dir / "logs" / "code-server-editable.log").read_text()
    )


def test_a_warm_run_can_be_terminated(supervised):
    run = supervised.graphql.launch_run("editable", "wait_job")
    wait_until(lambda: supervised.graphql.run_status(run.run_id) == "STARTED", 60, "the run")
    answer = supervised.graphql.query(
        "mutation($id: String!) { terminateRun(runId: $id) { __typename } }", {"id": run.run_id}
    )
    assert answer["terminateRun"]["__typename"] == "TerminateRunSuccess", answer
    [done] = supervised.graphql.wait_for_runs([run], timeout=60, poll=0.2)
    assert done.status == "CANCELED"


def test_reload_over_graphql_serves_the_edited_code(supervised):
    before = pids(supervised)
    write_editable(supervised.package_dir, "version two")
    assert supervised.graphql.reload_location("editable")
    # The outcome only: how fast a reload is belongs to bench/platform_startup.py.
    assert supervised.graphql.locations()["editable"].loaded
    assert description(supervised) == "version two"
    after = wait_until(
        lambda: supervised.location("editable")["state"] == "ready" and pids(supervised),
        30,
        "the reloaded location to be checked",
    )
    assert after["editable"] != before["editable"]
    assert {n: after[n] for n in ("alpha", "beta")} == {n: before[n] for n in ("alpha", "beta")}
    assert supervised.location("editable")["port"] == supervised.ports["editable"]
    wait_until(lambda: not psutil.pid_exists(before["editable"]), 30, "the old server to exit")
    assert f"location editable: pid {after['editable']} replaces pid {before['editable']}" in (
        supervised.log()
    )


def test_killed_code_server_is_reforked_and_the_others_keep_their_pids(supervised):
    before = pids(supervised)
    restarts = supervised.location("beta")["restarts"]
    os.kill(before["beta"], signal.SIGKILL)
    wait_until(
        lambda: (
            supervised.location("beta")["state"] == "ready"
            and supervised.location("beta")["restarts"] == restarts + 1
        ),
        60,
        "beta to be re-forked",
    )
    after = pids(supervised)
    assert after["beta"] != before["beta"]
    assert {n: after[n] for n in ("alpha", "editable")} == {
        n: before[n] for n in ("alpha", "editable")
    }
    assert "location beta: gRPC server" in supervised.log()
    assert "was killed by signal 9" in supervised.log()
    loaded = supervised.graphql.wait_for_locations(["alpha", "beta", "editable"], timeout=60)
    assert all(info.loaded for info in loaded.values())


def test_killed_fork_server_is_restarted_and_the_code_servers_keep_running(supervised):
    before = pids(supervised)
    parent = supervised.status()["fork_server"]["pid"]
    os.kill(parent, signal.SIGKILL)
    wait_until(
        lambda: (
            (fs := supervised.status()["fork_server"])["state"] == "ready" and fs["pid"] != parent
        ),
        60,
        "a new fork server",
    )
    assert pids(supervised) == before
    assert all(supervised.location(n)["state"] == "ready" for n in before)
    assert "fork server (pid" in supervised.log() and "was killed by signal 9" in supervised.log()
    # The new parent forks: a crashed server comes back from it.
    new_parent = supervised.status()["fork_server"]["pid"]
    os.kill(before["alpha"], signal.SIGKILL)
    wait_until(
        lambda: (
            supervised.location("alpha")["state"] == "ready"
            and supervised.location("alpha")["pid"] not in (None, before["alpha"])
        ),
        60,
        "alpha to be forked by the new fork server",
    )
    assert psutil.Process(supervised.location("alpha")["pid"]).cmdline() == (
        psutil.Process(new_parent).cmdline()
    )
