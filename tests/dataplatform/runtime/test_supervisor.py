"""dagster-init with small fixture locations: real code servers, in both modes.

One supervisor serves a config with good, broken, port-conflicted and invalid entries; the tests
then check what a user would see: states in the status file, log lines, live processes. Every
test runs twice: with forked code servers (the default) and with plain `dagster api grpc`
processes (DAGSTER_INIT_MODE=process).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import psutil
import pytest

from dataplatform.runtime.processes import port_is_free
from pyairbyte import settings
from tests.helpers import wait_until
from tests.ports import free_code_location_ports, stop_recorded_processes

FIXTURES = "tests.fixture_locations"
SCRIPT = settings.app_root() / "data-manager" / "scripts" / "dagster-init.sh"


class Supervised:
    def __init__(self, platform_dir, log_path, ports, blocker):
        self.platform_dir = platform_dir
        self.log_path = log_path
        self.ports = ports
        self.blocker = blocker
        self.proc: subprocess.Popen | None = None

    @property
    def status_file(self):
        return self.platform_dir / "run" / "dagster-init.status.json"

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def location(self, name) -> dict:
        return self.status().get("locations", {}).get(name, {})

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture(scope="module", params=["fork", "process"])
def supervised(request, tmp_path_factory):
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"supervisor-{mode}")
    alpha, beta, broken, taken = free_code_location_ports(4)
    # The port conflict: something else already listens on `taken`.
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", taken))
    blocker.listen()

    def entry(name, module, port, enabled=True):
        return {"name": name, "enabled": enabled, "module": f"{FIXTURES}.{module}", "port": port}

    config = tmp / "code-locations.json"
    entries = [
        entry("alpha", "alpha", alpha),
        entry("beta", "beta", beta),
        entry("broken", "broken", broken),
        entry("taken", "beta", taken),
        entry("dup_port", "alpha", alpha),
        entry("out_of_range", "alpha", 4300),
        entry("unknown_module", "does_not_exist", 4266),
        entry("switched_off", "alpha", 4267, enabled=False),
    ]
    config.write_text(json.dumps({"code_locations": entries}))
    platform_dir = tmp / "platform"
    log_path = tmp / "dagster-init.log"
    env = {
        **os.environ,
        "CODE_LOCATIONS_FILE": str(config),
        "DATAPLATFORM_PLATFORM_DIR": str(platform_dir),
        "DAGSTER_HOME": str(tmp / "dagster_home"),
        "DAGSTER_INIT_BACKOFF_MAX": "3",
        "DAGSTER_INIT_LOAD_ERROR_RETRIES": "1",
        "DAGSTER_INIT_MODE": mode,
        "DAGSTER_INIT_PRELOAD": "none",  # dagster only: the fork server is ready in seconds
    }
    # An instance whose storage exists, as platform start leaves it (see ensure_instance_storage).
    (tmp / "dagster_home").mkdir()
    subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )
    ports = {"alpha": alpha, "beta": beta, "broken": broken, "taken": taken}
    sup = Supervised(platform_dir, log_path, ports, blocker)
    sup.mode = mode
    with open(log_path, "wb") as log:
        sup.proc = subprocess.Popen(
            ["bash", str(SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: sup.status().get("initial_round_complete"), 180, "dagster-init's first round"
        )
        yield sup
    finally:
        blocker.close()
        if sup.proc.poll() is None:  # a test failed before the SIGTERM test ran
            sup.proc.send_signal(signal.SIGTERM)
            try:
                sup.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                sup.proc.kill()
        stop_recorded_processes(platform_dir)


def test_good_locations_are_ready_and_answer(supervised):
    for name in ("alpha", "beta"):
        info = supervised.location(name)
        assert info["state"] == "ready", info
        assert psutil.pid_exists(info["pid"])
        assert not port_is_free("127.0.0.1", supervised.ports[name])
    assert "initial start done" in supervised.log()


def test_invalid_entries_get_one_clear_error_each_and_nothing_starts(supervised):
    log = supervised.log()
    path = supervised.status()["source"]
    expected = [
        f"{path}: error: code_locations[4] (\"dup_port\"), field 'port': "
        f'{supervised.ports["alpha"]} is already used by code_locations[0] ("alpha")',
        f"{path}: error: code_locations[5] (\"out_of_range\"), field 'port': 4300 is outside "
        "the code-location range 4266-4299",
        f"{path}: error: code_locations[6] (\"unknown_module\"), field 'module': "
        f"'{FIXTURES}.does_not_exist' is not importable",
    ]
    for line in expected:
        assert line in log
    assert len(supervised.status()["invalid_entries"]) == 3
    assert set(supervised.status()["locations"]) == {"alpha", "beta", "broken", "taken"}
    assert "location switched_off: disabled" in log
    assert port_is_free("127.0.0.1", 4300)
    serving = {n: i["pid"] for n, i in supervised.status()["locations"].items() if i["pid"]}
    assert sorted(serving) == ["alpha", "beta", "broken"]
    # Forked servers are re-parented to dagster-init (a subreaper): its children in both modes.
    children = {p.pid for p in psutil.Process(supervised.proc.pid).children()}
    assert set(serving.values()) <= children
    assert supervised.status()["mode"] == supervised.mode


def test_location_whose_code_fails_to_load_is_reported(supervised):
    info = supervised.location("broken")
    assert info["state"] == "load_error"
    assert "fails to import on purpose" in info["message"]
    log = supervised.log()
    # Retried once (a load can fail for a passing reason), then served with its error.
    assert (
        "location broken: code failed to load (ImportError: fixture location 'broken' fails to "
        "import on purpose); retry 1 of 1"
    ) in log
    assert "location broken: server is up on port" in log
    assert "but its code failed to load" in log


def test_port_conflict_is_reported_and_the_location_starts_once_the_port_is_free(supervised):
    info = supervised.location("taken")
    port = supervised.ports["taken"]
    assert info["state"] == "port_in_use"
    assert info["message"].startswith(
        f"port {port} on 127.0.0.1 is already in use by pid {os.getpid()}"
    )
    assert f"location taken NOT started: port {port} on 127.0.0.1 is already in use" in (
        supervised.log()
    )
    supervised.blocker.close()
    wait_until(lambda: supervised.location("taken")["state"] == "ready", 60, "taken to serve")


def test_killed_server_is_restarted_with_backoff_and_logged(supervised):
    before = supervised.location("beta")
    os.kill(before["pid"], signal.SIGKILL)
    after = wait_until(
        lambda: (
            (info := supervised.location("beta"))["state"] == "ready"
            and info["restarts"] == before["restarts"] + 1
            and info
        ),
        90,
        "beta to be restarted",
    )
    assert after["pid"] != before["pid"]
    log = supervised.log()
    assert (
        f"location beta: gRPC server (port {supervised.ports['beta']}) was killed by signal 9"
        in log
    )
    assert f"location beta: restarting in 1s (restart #{before['restarts'] + 1})" in log


def test_second_platform_on_the_same_port_is_refused(supervised, tmp_path):
    """gRPC servers share ports (SO_REUSEPORT); a second dagster-init must not join in."""
    port = supervised.ports["alpha"]
    config = tmp_path / "code-locations.json"
    config.write_text(
        json.dumps(
            {"code_locations": [{"name": "again", "module": f"{FIXTURES}.alpha", "port": port}]}
        )
    )
    env = {
        **os.environ,
        "CODE_LOCATIONS_FILE": str(config),
        "DATAPLATFORM_PLATFORM_DIR": str(tmp_path / "platform"),
    }
    proc = subprocess.Popen(
        ["bash", str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    status_file = tmp_path / "platform" / "run" / "dagster-init.status.json"
    try:
        status = wait_until(
            lambda: (
                status_file.exists()
                and json.loads(status_file.read_text()).get("initial_round_complete")
                and json.loads(status_file.read_text())
            ),
            60,
            "the second dagster-init to settle",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    again = status["locations"]["again"]
    assert again["state"] == "port_in_use"
    assert again["message"] == f"port {port} is served by another dagster-init on this machine"
    assert f"location again NOT started: port {port} is served by another dagster-init" in output
    assert supervised.location("alpha")["state"] == "ready"


def test_sigterm_stops_every_child(supervised):
    children = [p.pid for p in psutil.Process(supervised.proc.pid).children(recursive=True)]
    assert len(children) >= 4
    supervised.proc.send_signal(signal.SIGTERM)
    assert supervised.proc.wait(timeout=60) == 0
    assert not [pid for pid in children if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]  # fmt: skip
    for port in supervised.ports.values():
        assert port_is_free("127.0.0.1", port)
    assert "all code servers stopped" in supervised.log()
    assert {i["state"] for i in supervised.status()["locations"].values()} == {"stopped"}
