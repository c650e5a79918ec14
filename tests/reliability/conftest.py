"""A local platform for fault-injection tests: real dagster-init, code server, webserver, daemon.

Only `sample_product_sync` is served, against a sample products API that the test controls
(it can be slowed down, so a fault can be injected while a sync runs). The platform uses its own
ports and platform directory, and the session's database.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataplatform.local.sample_api import SampleProductsApi
from dataplatform.runtime.dagster_graphql import DagsterGraphQL
from pyairbyte import settings
from tests.helpers import platform_script, supervisor_status
from tests.ports import free_code_location_ports, free_port, stop_recorded_processes

ROOT = settings.app_root()
LOCATION = "sample_product_sync"
JOB = "sample_product_sync_pipeline"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class FaultPlatform:
    env: dict[str, str]
    url: str
    platform_dir: Path
    api: SampleProductsApi
    client: DagsterGraphQL
    started: subprocess.CompletedProcess | None = None  # start.sh's result

    def script(self, name: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return platform_script(ROOT, name, self.env, timeout)

    def supervisor_status(self) -> dict:
        return supervisor_status(self.platform_dir)

    def code_server_pid(self, location: str = LOCATION) -> int | None:
        return self.supervisor_status()["locations"][location].get("pid")

    def launch(self) -> str:
        return self.client.launch_run(LOCATION, JOB).run_id

    def status(self, run_id: str) -> str:
        return self.client.run(run_id)["status"]

    def wait_for_status(self, run_id: str, wanted: set[str], timeout: float) -> tuple[str, float]:
        """(status, seconds waited) once the run reaches one of `wanted`, or the last status."""
        t0 = time.monotonic()
        status = self.status(run_id)
        while status not in wanted and time.monotonic() - t0 < timeout:
            time.sleep(0.5)
            status = self.status(run_id)
        return status, time.monotonic() - t0

    def wait_until_loaded(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            loc = self.client.locations().get(LOCATION)
            if loc is not None and loc.loaded:
                return
            time.sleep(0.5)
        raise AssertionError(f"{LOCATION} not loaded again within {timeout} s")


@contextlib.contextmanager
def start_fault_platform(
    tmp: Path,
    ports: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
    expect_all_loaded: bool = True,
) -> Iterator[FaultPlatform]:
    """A platform serving the locations in `ports` (default: sample_product_sync alone).

    `env` is the environment of its processes (default: ours, so POSTGRES_* of the pg fixture:
    the session's database). The start's console output is in `p.started`.
    """
    doc = json.loads(settings.code_locations_file().read_text())
    ports = ports or {LOCATION: free_code_location_ports(1)[0]}
    for loc in doc["code_locations"]:
        loc["enabled"] = loc["name"] in ports
        loc["port"] = ports.get(loc["name"], loc["port"])
    config = tmp / "code-locations.json"
    config.write_text(json.dumps(doc))
    api = SampleProductsApi().start()
    web_port = free_port()
    env = {
        **(os.environ if env is None else env),
        "CODE_LOCATIONS_FILE": str(config),
        "DATAPLATFORM_PLATFORM_DIR": str(tmp / "platform"),
        "DAGSTER_WEBSERVER_PORT": str(web_port),
        "SAMPLE_API_URL": api.url,
    }
    url = f"http://127.0.0.1:{web_port}"
    p = FaultPlatform(env, url, tmp / "platform", api, DagsterGraphQL(url))
    try:
        p.started = p.script("start.sh", timeout=600)
        if expect_all_loaded:
            assert p.started.returncode == 0, p.started.stdout + p.started.stderr
        yield p
    finally:
        p.script("stop.sh")
        stop_recorded_processes(p.platform_dir)
        api.stop()


@pytest.fixture(scope="module")
def fault_platform(pg, tmp_path_factory):
    with start_fault_platform(tmp_path_factory.mktemp("fault_platform")) as p:
        yield p
