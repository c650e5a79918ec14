"""On the running local platform, a location added with `dataplatform connector add` is served
after the platform's reload step (today: platform/stop.sh then platform/start.sh), and its
pipeline runs there, launched over GraphQL like from the UI.

The platform runs from a copy of the repository, on private ports (reserved code-location
ports, a free webserver port) and its own platform directory, so a developer's running platform
is never touched.
"""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from dataplatform.runtime.dagster_graphql import DagsterGraphQL
from tests.dataplatform.lifecycle.conftest import CONNECTOR_YAML, make_copy
from tests.dataplatform.lifecycle.orders_api import make_orders
from tests.helpers import scalar
from tests.ports import free_code_location_ports, free_port

CODE_LOCATIONS = "data-manager/resources/dagster/code-locations.json"


@pytest.fixture(scope="module")
def running_platform(pg, orders_api, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reload")
    copy = make_copy(tmp / "repo")
    # Private ports for every entry (and one for the new location), committed in the copy.
    path = copy.root / CODE_LOCATIONS
    doc = json.loads(path.read_text())
    ports = free_code_location_ports(len(doc["code_locations"]) + 1)
    for entry, port in zip(doc["code_locations"], ports, strict=False):
        entry["port"] = port
    path.write_text(json.dumps(doc, indent=2) + "\n")
    regenerate = copy.cli("configs", "write")
    assert regenerate.returncode == 0, regenerate.stderr
    subprocess.run(["git", "commit", "-qam", "private ports"], cwd=copy.root, check=True)
    web_port = free_port()
    copy.env.update(
        {
            "DATAPLATFORM_PLATFORM_DIR": str(tmp / "platform"),
            "DAGSTER_WEBSERVER_PORT": str(web_port),
            "PYTHON": sys.executable,  # the copy has no .venv of its own
        }
    )
    copy.new_port = ports[-1]
    copy.url = f"http://127.0.0.1:{web_port}"
    enabled = [e["name"] for e in doc["code_locations"] if e["enabled"]]
    try:
        started = copy.script("start.sh")
        assert started.returncode == 0, started.stdout + started.stderr
        copy.enabled = enabled
        yield copy
    finally:
        copy.script("stop.sh")
        for child in psutil.Process().children(recursive=True):  # our own children only
            child.kill()


def test_added_location_is_served_after_reload_and_its_job_runs(running_platform, pg_conn):
    platform = running_platform
    client = DagsterGraphQL(platform.url)
    before = client.wait_for_locations(platform.enabled, timeout=120)
    assert "shop_orders" not in before
    assert all(before[name].loaded for name in platform.enabled), before

    # One stream (--streams) keeps the run short; test_connector_add_remove covers both.
    added = platform.cli(
        "connector", "add", "shop_orders", "--connector-yaml", str(CONNECTOR_YAML),
        "--port", str(platform.new_port), "--streams", "orders",
    )  # fmt: skip
    assert added.returncode == 0, added.stdout + added.stderr

    # The platform's reload step.
    stopped = platform.script("stop.sh")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    started = platform.script("start.sh")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "shop_orders: loaded (1 job(s))" in started.stdout, started.stdout

    after = client.wait_for_locations([*platform.enabled, "shop_orders"], timeout=120)
    assert after["shop_orders"].loaded, after["shop_orders"]
    assert after["shop_orders"].jobs == ("shop_orders_pipeline",)

    run = client.launch_run("shop_orders", "shop_orders_pipeline")
    [finished] = client.wait_for_runs([run], timeout=600)
    assert finished.status == "SUCCESS", finished
    assert scalar(pg_conn, "select count(*) from reporting.orders_reporting") == len(make_orders())
