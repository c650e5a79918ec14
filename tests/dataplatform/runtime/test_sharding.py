"""Code locations sharded over two "hosts": the loopback aliases 127.0.0.2 and 127.0.0.3.

Linux routes all of 127/8 to lo, so each alias stands for a machine. Each host runs its own
dagster-init with a host filter (one by --host-filter, one by DAGSTER_INIT_HOST) and binds its
code servers to its own address; one webserver and one daemon read a workspace that lists every
entry at its host, and everything shares one PostgreSQL database. The checks are the ones a
user would make in the UI: every location LOADED, each run on its own host's code server, and
when one host goes down, only its locations are unavailable, until it comes back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import psycopg2
import pytest

from dataplatform.runtime import derived_configs
from dataplatform.runtime.code_locations import load_code_locations, workspace_config
from dataplatform.runtime.dagster_graphql import DagsterGraphQL
from pyairbyte import settings
from tests.helpers import exported_env, wait_until
from tests.ports import free_code_location_ports, free_port

pytestmark = [pytest.mark.slow, pytest.mark.platform]

HOSTS = {"alpha": "127.0.0.2", "beta": "127.0.0.3"}
ROOT = settings.app_root()


class Host:
    """One "machine": a dagster-init serving the entries whose host is `address`."""

    def __init__(self, name: str, address: str, tmp: Path, env: dict, by_env: bool):
        self.name, self.address = name, address
        self.platform_dir = tmp / f"host-{address}"
        self.log_path = tmp / f"dagster-init-{address}.log"
        self.env = {**env, "DATAPLATFORM_PLATFORM_DIR": str(self.platform_dir)}
        self.args = ["--bind-host", address]
        if by_env:
            self.env["DAGSTER_INIT_HOST"] = address
        else:
            self.args += ["--host-filter", address]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dataplatform.cli", "dagster-init", *self.args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def status(self) -> dict:
        try:
            return json.loads((self.platform_dir / "run" / "dagster-init.status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def tree(self) -> list[psutil.Process]:
        """dagster-init and everything under it (code servers run in sessions of their own)."""
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill_hard(self) -> None:
        """kill -9 of dagster-init and its children, as a machine that loses power."""
        for proc in self.tree():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.kill_hard() if self.proc else None
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill_hard()


class ParentWatch:
    """Samples pid -> parent pid of every process under the hosts while runs execute.

    A trivial run's worker lives for seconds, so its parent is recorded while it runs and
    looked up afterwards by the pid on its RUN_START event.
    """

    def __init__(self, hosts: list[Host]):
        self.hosts = hosts
        self.parents: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for host in self.hosts:
                for proc in host.tree():
                    try:
                        self.parents[proc.pid] = proc.ppid()
                    except psutil.NoSuchProcess:
                        pass
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _admin(pg) -> dict:
    return {k: v for k, v in pg.psycopg2_kwargs().items() if k != "dbname"} | {"dbname": "postgres"}


def _sql(pg, statement: str) -> None:
    conn = psycopg2.connect(**_admin(pg))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


@pytest.fixture(scope="module")
def sharded(pg, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sharding")
    ports = dict(zip(HOSTS, free_code_location_ports(2), strict=True))
    config = tmp / "code-locations.json"
    config.write_text(json.dumps({"code_locations": [
        {"name": name, "enabled": True, "module": f"tests.fixture_locations.{name}",
         "port": ports[name], "host": HOSTS[name], "description": f"{name} on {HOSTS[name]}"}
        for name in HOSTS
    ]}))  # fmt: skip
    workspace = tmp / "workspace.yaml"
    locations = load_code_locations(config, check_modules=False)
    workspace.write_text(
        derived_configs.render_workspace(
            locations, workspace_config(json.loads(config.read_text())), "container", str(config)
        )
    )
    dbname = f"dataplatform_sharding_{uuid.uuid4().hex[:8]}"
    _sql(pg, f'create database "{dbname}"')
    dagster_home = tmp / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(ROOT / "platform" / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {
        **os.environ,
        "POSTGRES_DB": dbname,
        "DAGSTER_HOME": str(dagster_home),
        "CODE_LOCATIONS_FILE": str(config),
        "DAGSTER_INIT_BACKOFF_MAX": "3",
        # One plain `dagster api grpc` per location: what is under test is the host filter and
        # the addresses, not how dagster-init starts its servers.
        "DAGSTER_INIT_MODE": "process",
    }
    processes: list[subprocess.Popen] = []
    hosts = {
        "alpha": Host("alpha", HOSTS["alpha"], tmp, env, by_env=False),
        "beta": Host("beta", HOSTS["beta"], tmp, env, by_env=True),
    }
    try:
        subprocess.run([sys.executable, "-m", "dagster", "instance", "migrate"], env=env,
                       check=True, capture_output=True)  # fmt: skip
        for host in hosts.values():
            host.start()
        web_port = free_port()
        for argv, log in (
            (["dagster-webserver", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(web_port)],
             "webserver.log"),
            (["dagster-daemon", "run", "-w", str(workspace)], "daemon.log"),
        ):  # fmt: skip
            with open(tmp / log, "wb") as out:
                processes.append(subprocess.Popen(
                    [str(Path(sys.executable).parent / argv[0]), *argv[1:]], env=env,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                ))  # fmt: skip
        gql = DagsterGraphQL(f"http://127.0.0.1:{web_port}")
        wait_until(gql.is_up, 120, "the webserver")
        with exported_env(POSTGRES_DB=dbname, DAGSTER_HOME=str(dagster_home)):
            from dagster import DagsterInstance

            instance = DagsterInstance.get()
            yield hosts, gql, ports, instance, tmp
            instance.dispose()
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for host in hosts.values():
            host.stop()
        for proc in processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        _sql(pg, f'drop database if exists "{dbname}" with (force)')


def _run(gql, location: str, job: str, timeout: float = 90.0) -> str:
    run = gql.launch_run(location, job)
    [done] = gql.wait_for_runs([run], timeout)
    assert done.status == "SUCCESS", f"{location}/{job}: {done.status}"
    return run.run_id


def _worker_pid(instance, run_id: str) -> int:
    """The run worker: the process that emitted the run's RUN_START event."""
    from dagster import DagsterEventType

    [entry] = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
    return entry.dagster_event.pid


def _listens_on(pid: int) -> set[tuple[str, int]]:
    try:
        conns = psutil.Process(pid).net_connections("tcp")
    except psutil.NoSuchProcess:
        return set()
    # gRPC listens on a dual-stack socket: 127.0.0.2 shows as ::ffff:127.0.0.2.
    return {(c.laddr.ip.removeprefix("::ffff:"), c.laddr.port) for c in conns
            if c.status == psutil.CONN_LISTEN}  # fmt: skip


def test_every_location_loads_each_from_its_own_host(sharded):
    hosts, gql, ports, _instance, _tmp = sharded
    status = gql.wait_for_locations(list(HOSTS), timeout=150)
    assert {n: s.loaded for n, s in status.items()} == {"alpha": True, "beta": True}, status
    for name, host in hosts.items():
        wait_until(lambda h=host: h.status().get("initial_round_complete"), 60, f"{name}'s init")
        # Each dagster-init serves its own share only, bound to its own address.
        assert set(host.status()["locations"]) == {name}
        servers = [p.pid for p in host.tree() if (HOSTS[name], ports[name]) in _listens_on(p.pid)]
        assert servers, f"nothing under {name}'s dagster-init listens on {HOSTS[name]}"


def test_each_run_executes_on_its_own_hosts_code_server(sharded):
    hosts, gql, ports, instance, _tmp = sharded
    gql.wait_for_locations(list(HOSTS), timeout=60)
    servers = {
        name: {p.pid for p in host.tree() if (HOSTS[name], ports[name]) in _listens_on(p.pid)}
        for name, host in hosts.items()
    }
    with ParentWatch(list(hosts.values())) as watch:
        run_ids = {name: _run(gql, name, f"{name}_job") for name in HOSTS}
    for name, run_id in run_ids.items():
        run = instance.get_run_by_id(run_id)
        grpc_info = json.loads(run.tags[".dagster/grpc_info"])
        assert (grpc_info["host"], grpc_info["port"]) == (HOSTS[name], ports[name])
        worker = _worker_pid(instance, run_id)
        assert watch.parents.get(worker) in servers[name], (
            f"{name}'s run worker {worker} did not run under {name}'s code server "
            f"{servers[name]} (parents seen: {watch.parents.get(worker)})"
        )


def test_a_host_going_down_takes_only_its_locations_and_they_come_back(sharded):
    hosts, gql, _ports, instance, _tmp = sharded
    gql.wait_for_locations(list(HOSTS), timeout=60)
    hosts["alpha"].kill_hard()

    def alpha_unavailable():
        try:
            gql.reload_location("alpha")
        except Exception:  # the reload itself may report the error
            pass
        status = gql.locations()
        return not status["alpha"].loaded and status["beta"].loaded

    wait_until(alpha_unavailable, 60, "alpha to show as unavailable")
    assert gql.locations()["alpha"].error, "the UI shows why alpha is unavailable"
    _run(gql, "beta", "beta_job")  # the other host's runs keep succeeding

    hosts["alpha"].start()
    status = gql.wait_for_locations(list(HOSTS), timeout=120)
    assert status["alpha"].loaded and status["beta"].loaded, status
    run_id = _run(gql, "alpha", "alpha_job", timeout=120)
    grpc_info = json.loads(instance.get_run_by_id(run_id).tags[".dagster/grpc_info"])
    assert grpc_info["host"] == HOSTS["alpha"]
