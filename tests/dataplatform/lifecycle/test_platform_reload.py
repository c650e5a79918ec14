"""Live changes on the running local platform: `connector add` and `remove` with no restart.

While the platform runs (fork mode, the default), `dataplatform connector add` has dagster-init
start only the new location, the webserver re-read its workspace and the daemon load it. The test
checks what a user would: the new location is LOADED and its job runs to SUCCESS, launched over
GraphQL (queued, so the daemon dequeues it); every other location keeps its process, and so do
the webserver and daemon; a sync that was in progress the whole time finishes SUCCESS. Then
`connector remove` takes the location away the same way.

The platform runs from a copy of the repository, on private ports (reserved code-location
ports, a free webserver port) and its own platform directory, so a developer's running platform
is never touched. The supervisor-level reconcile, in both modes, is in
tests/dataplatform/runtime/test_reconcile.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse

import psutil
import pytest

from dataplatform.local.sample_api import SampleProductsApi
from dataplatform.runtime.dagster_graphql import DagsterGraphQL
from dataplatform.runtime.processes import read_live_pid
from pyairbyte import settings
from tests.dataplatform.lifecycle.conftest import CONNECTOR_YAML, make_copy
from tests.dataplatform.lifecycle.orders_api import make_orders
from tests.dataplatform.local.headless_chromium import HeadlessChromium, chromium_path
from tests.helpers import scalar, wait_until
from tests.ports import free_code_location_ports, free_port, stop_recorded_processes

CODE_LOCATIONS = "data-manager/resources/dagster/code-locations.json"


class HeldProductsApi(SampleProductsApi):
    """The sample API, whose /products answers wait until `released`: a sync in progress."""

    def __init__(self):
        self.released = threading.Event()
        self.released.set()
        self.held = threading.Event()  # a /products request is waiting
        super().__init__()

    def _handler_class(self):
        api, base = self, super()._handler_class()

        class Held(base):
            def do_GET(self):
                if urlparse(self.path).path == "/products" and not api.released.is_set():
                    api.held.set()
                    api.released.wait(600)
                super().do_GET()

        return Held


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
    api = HeldProductsApi().start()
    web_port = free_port()
    copy.env.update(
        {
            "DATAPLATFORM_PLATFORM_DIR": str(tmp / "platform"),
            "DAGSTER_WEBSERVER_PORT": str(web_port),
            "SAMPLE_API_URL": api.url,
            "PYTHON": sys.executable,  # the copy has no .venv of its own
        }
    )
    copy.new_port = ports[-1]
    copy.url = f"http://127.0.0.1:{web_port}"
    copy.platform_dir = tmp / "platform"
    copy.api = api
    enabled = [e["name"] for e in doc["code_locations"] if e["enabled"]]
    try:
        started = copy.script("start.sh")
        assert started.returncode == 0, started.stdout + started.stderr
        copy.enabled = enabled
        yield copy
    finally:
        api.released.set()
        copy.script("stop.sh")
        stop_recorded_processes(tmp / "platform")
        api.stop()


def _status(platform) -> dict:
    return json.loads((platform.platform_dir / "run" / "dagster-init.status.json").read_text())


def _server_pids(platform) -> dict[str, int]:
    return {name: info["pid"] for name, info in _status(platform)["locations"].items()}


def _component_pids(platform) -> dict[str, int | None]:
    run = platform.platform_dir / "run"
    names = ("dagster-init", "fork-server", "dagster-webserver", "dagster-daemon")
    # The daemon's watchdog writes its pid once it has started it, seconds after `start`.
    return wait_until(
        lambda: (
            all((pids := {n: read_live_pid(run / f"{n}.pid") for n in names}).values()) and pids
        ),
        60,
        "the platform's pid files",
    )


def _live_seconds(output: str) -> float:
    match = re.search(r"served by the running platform after ([\d.]+)s", output)
    assert match, output
    return float(match.group(1))


def test_add_and_remove_while_the_platform_runs(running_platform, pg_conn):
    platform = running_platform
    client = DagsterGraphQL(platform.url)
    before = client.wait_for_locations(platform.enabled, timeout=120)
    assert "shop_orders" not in before
    assert all(before[name].loaded for name in platform.enabled), before
    servers, components = _server_pids(platform), _component_pids(platform)

    # A sync in progress through the whole change: its requests wait until released.
    platform.api.released.clear()
    slow = client.launch_run("sample_product_sync", "sample_product_sync_pipeline")
    wait_until(platform.api.held.is_set, 120, "the sync's first request")

    # One stream (--streams) keeps the run short; test_connector_add_remove covers both.
    added = platform.cli(
        "connector", "add", "shop_orders", "--connector-yaml", str(CONNECTOR_YAML),
        "--port", str(platform.new_port), "--streams", "orders",
    )  # fmt: skip
    output = added.stdout + added.stderr
    assert added.returncode == 0, output
    assert "live: webserver" in output and "live: the daemon loaded" in output, output
    # The live part's time is a target measured by bench/live_add.py, not asserted here.
    print(f"connector add, live part: {_live_seconds(output):.1f}s")

    after = client.locations()
    assert after["shop_orders"].loaded, after["shop_orders"]
    assert after["shop_orders"].jobs == ("shop_orders_pipeline",)
    now = _server_pids(platform)
    assert {name: now[name] for name in servers} == servers  # nobody else restarted
    assert _component_pids(platform) == components
    assert psutil.pid_exists(now["shop_orders"])
    assert client.run_status(slow.run_id) == "STARTED"

    # Queued, so the daemon must already know the new location to dequeue it.
    run = client.launch_run("shop_orders", "shop_orders_pipeline")
    [finished] = client.wait_for_runs([run], timeout=600)
    assert finished.status == "SUCCESS", finished
    assert scalar(pg_conn, "select count(*) from reporting.orders_reporting") == len(make_orders())

    platform.api.released.set()
    [slow_done] = client.wait_for_runs([slow], timeout=600)
    assert slow_done.status == "SUCCESS", slow_done

    removed = platform.cli("connector", "remove", "shop_orders")
    output = removed.stdout + removed.stderr
    assert removed.returncode == 0, output
    assert "stopped shop_orders" in output, output
    assert "shop_orders" not in client.locations()
    assert "shop_orders" not in _status(platform)["locations"]
    assert not psutil.pid_exists(now["shop_orders"])
    assert _server_pids(platform) == servers
    assert _component_pids(platform) == components
    assert all(client.locations()[name].loaded for name in platform.enabled)


EDITED = "Edited while the platform runs, then reloaded from the UI"
EDIT = f'''
from dagster import AssetKey as _AssetKey

_KEY = _AssetKey(["pyairbyte_cache", "products"])
defs = defs.map_asset_specs(
    func=lambda spec: spec.replace_attributes(description="{EDITED}") if spec.key == _KEY else spec
)
'''
CLICK_RELOAD = """
(() => {
  // The code locations table is virtualized: each location is a div row, not a <tr>.
  const row = [...document.querySelectorAll('[class*="VirtualizedTable_row"]')]
    .find(r => r.innerText.split('\\n').some(line => line.trim() === '%s'));
  if (!row) return 'no row';
  const button = [...row.querySelectorAll('button')].find(b => b.innerText.trim() === 'Reload');
  if (!button || button.disabled) return 'no Reload button';
  button.click();
  return 'clicked';
})()
"""


@pytest.mark.browser
@pytest.mark.skipif(
    not chromium_path(), reason="chromium not installed (apt-get install -y chromium)"
)
def test_reload_clicked_in_the_ui_shows_the_edited_description(running_platform, tmp_path):
    """What a user does: edit an asset's description, click the location's Reload, look."""
    platform = running_platform
    client = DagsterGraphQL(platform.url)
    client.wait_for_locations(["sample_product_sync"], timeout=120)
    package = platform.root / "dagster_code" / "sample_product_sync" / "__init__.py"
    original = package.read_text()
    asset_page = f"{platform.url}/assets/pyairbyte_cache/products"
    with HeadlessChromium(tmp_path / "chromium-profile") as browser:
        page = browser.new_page()
        page.navigate(asset_page)
        page.wait_for_text(["synced by PyAirbyte"], timeout=90)
        assert EDITED not in page.body_text()
        try:
            package.write_text(original + EDIT)
            page.navigate(f"{platform.url}/deployment/locations")
            page.wait_for_text(["sample_product_sync", "Reload"], timeout=90)
            version = client.locations()["sample_product_sync"].server_id
            clicked_at = time.monotonic()
            assert page.evaluate(CLICK_RELOAD % "sample_product_sync") == "clicked"
            # Done once the webserver serves a new version of the location (a fresh fork).
            wait_until(
                lambda: (
                    (loc := client.locations()["sample_product_sync"]).loaded
                    and loc.server_id != version
                ),
                60,
                "the reload",
            )
            reloaded = time.monotonic() - clicked_at
            page.navigate(asset_page)
            page.wait_for_text([EDITED], timeout=60)
            seconds = time.monotonic() - clicked_at
        finally:
            package.write_text(original)
        page.screenshot(settings.project_dir() / "screenshots" / "reload-edited-description.png")
        page.close()
    print(f"Reload clicked to the edited description shown: {seconds:.1f}s "
          f"(location reloaded after {reloaded:.1f}s, then the page opened)")  # fmt: skip
    # No time bound here: a speed target belongs in a benchmark (bench/platform_startup.py
    # measures the reload against its 5 s target), and this page's load
    # alone varies by seconds on a busy machine (11.3 s in one CI run). The waits above bound
    # a hang; what this test asserts is that the click serves the edited code.
