"""Live changes at the supervisor: SIGUSR1 reconciles the servers with code-locations.json.

A real dagster-init serves fixture locations (in both modes); the test then edits the file the
way `connector add`/`remove` do and checks the processes: only the changed locations start or
stop, every other server keeps its pid. The whole platform (webserver, daemon, a run in
progress) is covered by tests/dataplatform/lifecycle/test_platform_reload.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from dataplatform.runtime.processes import port_is_free
from pyairbyte import settings
from tests.helpers import wait_until
from tests.ports import free_code_location_ports, stop_recorded_processes

FIXTURES = "tests.fixture_locations"
SCRIPT = settings.app_root() / "data-manager" / "scripts" / "dagster-init.sh"


def entry(name, module, port, enabled=True):
    return {"name": name, "enabled": enabled, "module": f"{FIXTURES}.{module}", "port": port}


class Reconciled:
    def __init__(self, tmp, config, proc, ports):
        self.tmp, self.config, self.proc, self.ports = tmp, config, proc, ports

    def status(self) -> dict:
        try:
            return json.loads(
                (self.tmp / "platform" / "run" / "dagster-init.status.json").read_text()
            )
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def pids(self) -> dict[str, int]:
        return {n: i["pid"] for n, i in self.status().get("locations", {}).items()}

    def write(self, entries) -> None:
        self.config.write_text(json.dumps({"code_locations": entries}))

    def reconcile(self, timeout: float = 60) -> dict:
        asked = time.time()
        self.proc.send_signal(signal.SIGUSR1)

        def done():
            result = self.status().get("reconcile") or {}
            finished = result.get("state") in ("done", "failed")
            return result if finished and result.get("read_at", 0) >= asked else None

        return wait_until(done, timeout, "the reconcile to finish")


@pytest.fixture(scope="module", params=["fork", "process"])
def supervised(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"reconcile-{request.param}")
    ports = dict(zip(["alpha", "beta", "gamma", "moved"], free_code_location_ports(4), strict=True))
    config = tmp / "code-locations.json"
    env = {
        **os.environ,
        "CODE_LOCATIONS_FILE": str(config),
        "DATAPLATFORM_PLATFORM_DIR": str(tmp / "platform"),
        "DAGSTER_HOME": str(tmp / "dagster_home"),
        "DAGSTER_INIT_MODE": request.param,
        "DAGSTER_INIT_PRELOAD": "none",
    }
    (tmp / "dagster_home").mkdir()
    subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )
    config.write_text(
        json.dumps(
            {
                "code_locations": [
                    entry("alpha", "alpha", ports["alpha"]),
                    entry("beta", "beta", ports["beta"]),
                ]
            }
        )
    )
    with open(tmp / "dagster-init.log", "wb") as log:
        proc = subprocess.Popen(
            ["bash", str(SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    sup = Reconciled(tmp, config, proc, ports)
    try:
        wait_until(lambda: sup.status().get("initial_round_complete"), 180, "first round")
        yield sup
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        stop_recorded_processes(tmp / "platform")


def test_add_remove_and_change_touch_only_those_locations(supervised):
    ports = supervised.ports
    before = supervised.pids()
    assert set(before) == {"alpha", "beta"} and all(before.values()), supervised.status()

    # Add gamma; alpha and beta stay as they are.
    supervised.write([
        entry("alpha", "alpha", ports["alpha"]),
        entry("beta", "beta", ports["beta"]),
        entry("gamma", "beta", ports["gamma"]),
    ])  # fmt: skip
    result = supervised.reconcile()
    assert result["state"] == "done", result
    assert result["started"] == ["gamma"] and result["stopped"] == []
    assert result["states"] == {"gamma": "ready"}
    after = supervised.pids()
    assert {n: after[n] for n in before} == before
    assert psutil.pid_exists(after["gamma"]) and not port_is_free("127.0.0.1", ports["gamma"])

    # Remove beta, disable gamma, move alpha to another port; an unchanged request is a no-op.
    supervised.write([
        entry("alpha", "alpha", ports["moved"]),
        entry("gamma", "beta", ports["gamma"], enabled=False),
    ])  # fmt: skip
    result = supervised.reconcile()
    assert sorted(result["stopped"]) == ["alpha", "beta", "gamma"], result
    assert result["started"] == ["alpha"], result
    assert result["states"] == {"alpha": "ready"}, supervised.status()["locations"]
    final = supervised.pids()
    assert set(final) == {"alpha"} and final["alpha"] != before["alpha"]
    for name in ("beta", "gamma"):
        wait_until(lambda n=name: not psutil.pid_exists(after[n]), 30, f"{name} stopped")
    assert port_is_free("127.0.0.1", ports["beta"]) and port_is_free("127.0.0.1", ports["alpha"])

    again = supervised.reconcile()
    assert again["started"] == [] and again["stopped"] == [] and again["unchanged"] == ["alpha"]
    assert supervised.pids() == final


def test_a_bad_file_changes_nothing_and_is_reported(supervised):
    before = supervised.pids()
    supervised.config.write_text("{not json")
    result = supervised.reconcile()
    assert result["state"] == "failed" and "code-locations.json" in result["error"], result
    assert supervised.pids() == before
