"""Container mode's live change, simulated with real processes on this machine (no Docker here).

As compose runs them, but each in a directory of its own standing in for its container:
dagster-init with DATAPLATFORM_SHARED_WORKSPACE and DAGSTER_WEBSERVER_URL (the data-manager
container), the webserver and daemon through dataplatform.runtime.dagster_webserver and
dagster_daemon reading the shared workspace, the daemon's platform dir beside it (its volume).
The entries' host is `localhost`, so the test tells the shared file (hosts from
code-locations.json, like `data-manager` in compose) from the local one (always 127.0.0.1).
Then `apply_live`, which `connector add` runs, with the data-manager's environment: the new
location is served by the running webserver and daemon, with no restart.
The compose wiring itself is checked statically in test_container_files.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from dataplatform.lifecycle.live import apply_live
from dataplatform.runtime import paths
from dataplatform.runtime.dagster_graphql import DagsterGraphQL, DagsterGraphQLError
from pyairbyte import settings
from tests.helpers import wait_until
from tests.ports import free_code_location_ports, free_port, stop_recorded_processes

FIXTURES = "tests.fixture_locations"
SCRIPT = settings.app_root() / "data-manager" / "scripts" / "dagster-init.sh"
HOST = "localhost"


def entry(name, module, port):
    return {"name": name, "module": f"{FIXTURES}.{module}", "port": port, "host": HOST}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ContainerPlatform:
    def __init__(self, tmp, ports, url):
        self.tmp, self.ports, self.url = tmp, ports, url
        self.config = tmp / "code-locations.json"
        self.shared = tmp / "shared" / "workspace.yaml"  # the `workspace` volume
        self.data_manager = tmp / "data-manager"  # the data-manager's platform dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.data_manager_env = {
            "CODE_LOCATIONS_FILE": str(self.config),
            "DATAPLATFORM_PLATFORM_DIR": str(self.data_manager),
            "DATAPLATFORM_SHARED_WORKSPACE": str(self.shared),
            "DAGSTER_WEBSERVER_URL": url,
        }

    def write(self, entries) -> None:
        self.config.write_text(json.dumps({"code_locations": entries}))

    def shared_servers(self) -> list[tuple[str, str, int]]:
        workspace = yaml.safe_load(self.shared.read_text())
        return [
            (e["grpc_server"]["location_name"], e["grpc_server"]["host"], e["grpc_server"]["port"])
            for e in workspace["load_from"]
        ]

    def status(self) -> dict:
        try:
            return json.loads((self.data_manager / "run" / "dagster-init.status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def server_pids(self) -> dict[str, int]:
        return {n: i["pid"] for n, i in self.status().get("locations", {}).items()}

    def start(self, name: str, command: list[str], env: dict) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        return proc


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """dagster-init, webserver and daemon wired as compose does (marks the tests `platform`)."""
    tmp = tmp_path_factory.mktemp("container-workspace")
    # Two ports only: other sessions' platforms may hold most of the test range.
    ports = dict(zip(["alpha", "gamma"], free_code_location_ports(2), strict=True))
    web_port = free_port()
    sim = ContainerPlatform(tmp, ports, f"http://127.0.0.1:{web_port}")
    home = tmp / "dagster_home"  # the shared instance storage (compose: dagster_storage)
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    base = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_INIT_PRELOAD": "none"}
    for name in ("DATAPLATFORM_SHARED_WORKSPACE", "DAGSTER_WEBSERVER_URL"):
        base.pop(name, None)
    subprocess.run([sys.executable, "-m", "dagster", "instance", "migrate"], env=base,
                   check=True, capture_output=True)  # fmt: skip
    sim.write([entry("alpha", "alpha", ports["alpha"])])
    try:
        sim.start("dagster-init", ["bash", str(SCRIPT)], {**base, **sim.data_manager_env})
        wait_until(lambda: sim.status().get("initial_round_complete"), 180, "first round")
        sim.seeded = sim.shared_servers()  # before anything else could rewrite it
        sim.start(
            "dagster-webserver",
            [sys.executable, "-m", "dataplatform.runtime.dagster_webserver",
             "-h", "127.0.0.1", "-p", str(web_port), "-w", str(sim.shared)],
            {**base, "DATAPLATFORM_PLATFORM_DIR": str(tmp / "webserver")},
        )  # fmt: skip
        sim.daemon_dir = paths.shared_daemon_dir(sim.shared)
        sim.start(
            "dagster-daemon",
            [sys.executable, "-m", "dataplatform.runtime.dagster_daemon",
             "run", "-w", str(sim.shared)],
            {**base, "DATAPLATFORM_PLATFORM_DIR": str(sim.daemon_dir)},
        )  # fmt: skip
        client = DagsterGraphQL(sim.url)

        def webserver_loaded():
            try:
                locations = client.locations()
            except (OSError, DagsterGraphQLError):  # not listening yet
                return None
            return set(locations) == {"alpha"} and all(loc.loaded for loc in locations.values())

        wait_until(webserver_loaded, 180, "the webserver to load alpha")
        report = sim.daemon_dir / "run" / "dagster-daemon.workspace.json"
        wait_until(report.exists, 120, "the daemon's first report")
        yield sim
    finally:
        for name in ("dagster-daemon", "dagster-webserver", "dagster-init"):
            if name in sim.procs:
                _stop(sim.procs[name])
        stop_recorded_processes(sim.data_manager)


def test_dagster_init_seeds_the_shared_workspace_with_the_entries_hosts(platform):
    ports = platform.ports
    assert platform.seeded == [("alpha", HOST, ports["alpha"])]


def _data_manager_env(platform, monkeypatch) -> None:
    # `docker compose exec data-manager dataplatform connector ...` runs with the container's env.
    for name, value in platform.data_manager_env.items():
        monkeypatch.setenv(name, value)


def test_connector_add_and_remove_are_served_without_restarting_webserver_or_daemon(
    platform, monkeypatch
):
    _data_manager_env(platform, monkeypatch)
    ports = platform.ports
    servers_before = platform.server_pids()
    pids_before = {name: proc.pid for name, proc in platform.procs.items()}

    platform.write(
        [entry("alpha", "alpha", ports["alpha"]), entry("gamma", "beta", ports["gamma"])]
    )
    t0 = time.monotonic()
    change = apply_live(["gamma"], [])
    seconds = time.monotonic() - t0
    assert change is not None and change.ok, change and change.describe()
    text = change.describe()
    assert f"live: webserver {platform.url}: gamma LOADED" in text, text
    assert "live: the daemon loaded the new workspace" in text, text
    assert "restart" not in text.replace("(no restart)", ""), text
    assert seconds < 60, text
    assert platform.shared_servers()[-1] == ("gamma", HOST, ports["gamma"])
    status = platform.status()["reconcile"]
    assert f"workspace {platform.shared} rewritten; webserver {platform.url}" in status[
        "workspace"], status  # fmt: skip
    # The webserver and daemon are the processes they were; alpha kept its server.
    for name, pid in pids_before.items():
        assert platform.procs[name].poll() is None, f"{name} exited"
        assert platform.procs[name].pid == pid
    after = platform.server_pids()
    assert {n: after[n] for n in servers_before} == servers_before

    platform.write([entry("alpha", "alpha", ports["alpha"])])
    change = apply_live([], ["gamma"])
    assert change is not None and change.ok, change and change.describe()
    assert f"live: webserver {platform.url}: gamma gone" in change.describe()
    assert platform.shared_servers() == [("alpha", HOST, ports["alpha"])]
    assert {n: platform.server_pids()[n] for n in servers_before} == servers_before
    assert all(proc.poll() is None for proc in platform.procs.values())
