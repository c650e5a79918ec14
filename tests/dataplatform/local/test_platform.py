"""The whole platform in local mode, as `make up` runs it: real processes, real PostgreSQL.

`platform/up.sh` starts the sample API, dagster-init (three real code servers), the webserver
and the daemon, then launches the sample jobs over GraphQL. The tests check what a user sees,
then kill a code server, open the UI in headless Chromium, and stop everything.

The test platform uses its own ports (top of the code-location range, a free webserver port)
and its own platform directory, so it never collides with a developer's running platform.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg2
import pytest

from dataplatform.local.sample_api import load_fixture_products
from dataplatform.runtime.dagster_graphql import DagsterGraphQL
from dataplatform.runtime.processes import port_is_free
from pyairbyte import settings
from tests.dataplatform.local.headless_chromium import HeadlessChromium, chromium_path
from tests.helpers import platform_script, rows, scalar, supervisor_status
from tests.ports import free_code_location_ports, free_port, stop_recorded_processes

ROOT = settings.app_root()
FAKER_COUNT = 300
SYNC_JOBS = [
    ("airbyte_sync", "airbyte_sync_pipeline"),
    ("sample_product_sync", "sample_product_sync_pipeline"),
]
LOCATIONS = {
    "dbt_poc": {"dbt_poc_pipeline"},
    "airbyte_sync": {"airbyte_sync_pipeline"},
    "sample_product_sync": {"sample_product_sync_pipeline"},
}


@dataclass
class Platform:
    env: dict[str, str]
    url: str
    platform_dir: Path
    up: subprocess.CompletedProcess
    ports: dict[str, int]
    runs_before: set[str]  # runs other tests left in the session's run storage

    def script(self, name: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return platform_script(ROOT, name, self.env, timeout)

    def supervisor_status(self) -> dict:
        return supervisor_status(self.platform_dir)

    def pids(self) -> dict[str, int]:
        out = {}
        for pid_file in (self.platform_dir / "run").glob("*.pid"):
            out[pid_file.stem] = int(pid_file.read_text())
        return out


@pytest.fixture(scope="module")
def platform(pg, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local_platform")
    doc = json.loads(settings.code_locations_file().read_text())
    ports = dict(
        zip(
            [loc["name"] for loc in doc["code_locations"]],
            free_code_location_ports(len(doc["code_locations"])),
            strict=True,
        )
    )
    for loc in doc["code_locations"]:
        loc["port"] = ports[loc["name"]]
    config = tmp / "code-locations.json"
    config.write_text(json.dumps(doc))
    web_port = free_port()
    env = {
        **os.environ,  # POSTGRES_* from the pg fixture: the session's database
        "CODE_LOCATIONS_FILE": str(config),
        "DATAPLATFORM_PLATFORM_DIR": str(tmp / "platform"),
        "DAGSTER_WEBSERVER_PORT": str(web_port),
        "SAMPLE_API_PORT": str(free_port()),
        "FAKER_COUNT": str(FAKER_COUNT),
        # The two sync jobs, together; dbt_poc_pipeline (make up's second wave) only rebuilds
        # the same models and is covered in-process by tests/test_pipelines.py.
        "UP_JOBS": ",".join(f"{loc}/{job}" for loc, job in SYNC_JOBS),
    }
    p = Platform(env, f"http://127.0.0.1:{web_port}", tmp / "platform", None, ports, _run_ids(pg))
    try:
        p.up = p.script("up.sh", timeout=1200)
        (tmp / "up.out").write_text(p.up.stdout + p.up.stderr)  # for a look after the fact
        yield p
    finally:
        p.script("stop.sh")
        stop_recorded_processes(p.platform_dir)  # in case stop.sh itself failed


def _run_ids(pg) -> set[str]:
    """Run ids already in the session database (e.g. from the lifecycle platform test)."""
    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    try:
        return {r for (r,) in rows(conn, "select run_id from runs")}
    except psycopg2.errors.UndefinedTable:
        return set()
    finally:
        conn.close()


def test_make_up_runs_the_sample_pipelines_and_reports(platform):
    out = platform.up.stdout
    assert platform.up.returncode == 0, out + platform.up.stderr
    assert f"Dagster UI: {platform.url}" in out
    for location, job in SYNC_JOBS:
        assert re.search(rf"{location}/{job}\s+SUCCESS\s+\d+\.\ds", out), out
    assert re.search(rf"reporting\.faker_users_reporting\s+{FAKER_COUNT} rows", out), out
    products = len(load_fixture_products())
    assert re.search(rf"reporting\.products_reporting\s+{products} rows", out), out
    assert "All sample pipelines succeeded." in out


def test_three_locations_are_loaded_over_graphql(platform):
    locations = DagsterGraphQL(platform.url).locations()
    assert set(locations) == set(LOCATIONS)
    for name, jobs in LOCATIONS.items():
        assert locations[name].loaded, locations[name]
        assert set(locations[name].jobs) == jobs


def test_reporting_tables_have_the_expected_rows(platform, pg_conn):
    assert scalar(pg_conn, "select count(*) from reporting.faker_users_reporting") == FAKER_COUNT
    products = load_fixture_products()
    assert scalar(pg_conn, "select count(*) from reporting.products_reporting") == len(products)
    assert scalar(
        pg_conn, "select count(distinct product_id) from reporting.products_reporting"
    ) == (len(products))


def test_runs_are_in_postgres_run_storage_with_the_connector_tag(platform, pg_conn):
    runs = [
        (job, status)
        for run_id, job, status in rows(pg_conn, "select run_id, pipeline_name, status from runs")
        if run_id not in platform.runs_before
    ]
    assert sorted(runs) == [
        ("airbyte_sync_pipeline", "SUCCESS"),
        ("sample_product_sync_pipeline", "SUCCESS"),
    ]
    tags = sorted(
        (job, tag)
        for run_id, job, tag in rows(
            pg_conn,
            "select r.run_id, r.pipeline_name, t.value from runs r join run_tags t "
            "using (run_id) where t.key = 'dataplatform/connector'",
        )
        if run_id not in platform.runs_before
    )
    assert tags == [
        ("airbyte_sync_pipeline", "source-faker"),
        ("sample_product_sync_pipeline", "sample-connector"),
    ]
    # The daemon dequeued them (queued coordinator), and its heartbeat is in the same storage.
    assert scalar(pg_conn, "select count(*) from daemon_heartbeats") >= 1


def test_start_again_while_up_is_safe(platform):
    before = platform.pids()
    result = platform.script("start.sh")
    assert result.returncode == 0, result.stdout + result.stderr
    for component in ("dagster-init", "dagster-webserver", "dagster-daemon"):
        assert f"{component}: already running (pid {before[component]})" in result.stdout
    assert platform.pids() == before


def test_killed_code_server_is_restarted_and_loaded_again(platform):
    client = DagsterGraphQL(platform.url)
    before = platform.supervisor_status()["locations"]["sample_product_sync"]
    version_before = client.locations()["sample_product_sync"].server_id
    os.kill(before["pid"], signal.SIGKILL)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = platform.supervisor_status()["locations"]["sample_product_sync"]
        if now["state"] == "ready" and now["restarts"] == before["restarts"] + 1:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"not restarted: {now}")
    assert now["pid"] != before["pid"]
    log = (platform.platform_dir / "logs" / "dagster-init.log").read_text()
    assert "location sample_product_sync: gRPC server" in log and "killed by signal 9" in log

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        loc = client.locations()["sample_product_sync"]
        if loc.loaded and loc.server_id != version_before:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"webserver did not reload the restarted server: {loc}")
    assert set(loc.jobs) == LOCATIONS["sample_product_sync"]


@pytest.mark.browser
@pytest.mark.skipif(
    not chromium_path(), reason="chromium not installed (apt-get install -y chromium)"
)
def test_ui_in_headless_chromium_shows_loaded_locations_and_the_asset_graph(platform, tmp_path):
    shots = settings.project_dir() / "screenshots"
    with HeadlessChromium(tmp_path / "chromium-profile") as browser:
        page = browser.new_page()
        page.navigate(f"{platform.url}/deployment/locations")
        text = page.wait_for_text([r"3 code locations", *LOCATIONS], timeout=90)
        # Each location's row ends with its status, "Loaded".
        for name in LOCATIONS:
            assert re.search(rf"{name}\n(?:.*\n){{0,8}}?Loaded", text), text
        assert "Failed" not in text
        page.screenshot(shots / "code-locations.png")

        page.navigate(
            f"{platform.url}/locations/sample_product_sync/asset-groups/sample_product_sync"
        )
        page.wait_for_text(["staging_products", "products_reporting", "Materialized"], timeout=90)
        time.sleep(1.5)  # let the graph finish its layout animation
        shot = page.screenshot(shots / "asset-graph.png")
        assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
        page.close()


@pytest.mark.browser
@pytest.mark.skipif(
    not chromium_path(), reason="chromium not installed (apt-get install -y chromium)"
)
def test_materialize_all_clicked_in_the_ui_succeeds(platform, pg_conn, tmp_path):
    """What a user does: open the sample_product_sync group and click "Materialize all"."""
    before = {run_id for (run_id,) in rows(pg_conn, "select run_id from runs")}
    with HeadlessChromium(tmp_path / "chromium-profile") as browser:
        page = browser.new_page()
        page.navigate(
            f"{platform.url}/locations/sample_product_sync/asset-groups/sample_product_sync"
        )
        page.wait_for_text(["staging_products", "Materialize all"], timeout=90)
        clicked = page.evaluate(
            "(() => { const b = [...document.querySelectorAll('button')]"
            ".find(b => b.innerText.trim() === 'Materialize all');"
            " if (!b || b.disabled) return false; b.click(); return true; })()"
        )
        assert clicked, page.body_text()[:2000]
        deadline = time.monotonic() + 60
        while not (new := {r for (r,) in rows(pg_conn, "select run_id from runs")} - before):
            assert time.monotonic() < deadline, "clicking Materialize all launched no run"
            time.sleep(0.5)
        page.close()
    (run_id,) = new
    client = DagsterGraphQL(platform.url)
    run = client.run(run_id)
    # The sync, the transform, and the freshness check (from the YAML's freshness:) on the
    # cache table, whose step key Dagster names by a hash of the checked assets.
    assert {_freshness_step(s["stepKey"]) for s in run["stepStats"]} <= {
        "sync_sample_connector",
        "transform_sample_product_data",
        "freshness_check",
    }
    deadline = time.monotonic() + 600
    while (status := client.run(run_id)["status"]) not in ("SUCCESS", "FAILURE", "CANCELED"):
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(1)
    assert status == "SUCCESS", f"{platform.url}/runs/{run_id}"
    steps = {_freshness_step(s["stepKey"]): s["status"] for s in client.run(run_id)["stepStats"]}
    assert steps == {
        "sync_sample_connector": "SUCCESS",
        "transform_sample_product_data": "SUCCESS",
        "freshness_check": "SUCCESS",
    }


def _freshness_step(step_key: str) -> str:
    return "freshness_check" if step_key.startswith("freshness_check_") else step_key


# The schedules the sample connector YAMLs declare (`schedule:`), each STOPPED until turned on.
SCHEDULES = {
    "airbyte_sync_pipeline_schedule": ("airbyte_sync", "0 */6 * * *"),
    "sample_product_sync_pipeline_schedule": ("sample_product_sync", "0 6 * * *"),
}
SCHEDULES_QUERY = """
query Schedules($selector: RepositorySelector!) {
  schedulesOrError(repositorySelector: $selector) {
    ... on Schedules { results { name cronSchedule executionTimezone scheduleState { status } } }
  }
  sensorsOrError(repositorySelector: $selector) {
    ... on Sensors { results { name sensorState { status } } }
  }
}
"""


def test_the_sample_schedules_and_freshness_sensors_are_stopped_over_graphql(platform):
    client = DagsterGraphQL(platform.url)
    for name, (location, cron) in SCHEDULES.items():
        selector = {"repositoryLocationName": location, "repositoryName": "__repository__"}
        data = client.query(SCHEDULES_QUERY, {"selector": selector})
        schedules = data["schedulesOrError"]["results"]
        assert [
            (s["name"], s["cronSchedule"], s["executionTimezone"], s["scheduleState"]["status"])
            for s in schedules
        ] == [(name, cron, "UTC", "STOPPED")]
        sensors = data["sensorsOrError"]["results"]
        assert [(s["name"], s["sensorState"]["status"]) for s in sensors] == [
            (f"{location}_freshness_checks", "STOPPED")
        ]


@pytest.mark.browser
@pytest.mark.skipif(
    not chromium_path(), reason="chromium not installed (apt-get install -y chromium)"
)
def test_the_automation_page_lists_the_sample_schedules(platform, tmp_path):
    with HeadlessChromium(tmp_path / "chromium-profile") as browser:
        page = browser.new_page()
        page.navigate(f"{platform.url}/automation")
        # Each row shows its name, then what it is: the cron in words, in the YAML's time zone.
        text = page.wait_for_text(
            [
                r"sample_product_sync_pipeline_schedule\nScheduled At 06:00 AM UTC",
                r"airbyte_sync_pipeline_schedule\nScheduled At 0 minutes past the hour, every 6 "
                r"hours",
                r"sample_product_sync_freshness_checks\nStandard sensor",
                r"airbyte_sync_freshness_checks\nStandard sensor",
            ],
            timeout=90,
        )
        assert "Something went wrong" not in text
        # Every switch on the page is off: nothing the YAMLs declare starts on its own.
        switches = page.evaluate(
            "[...document.querySelectorAll('input[type=checkbox]')].map(e => e.checked)"
        )
        assert switches and not any(switches), switches
        page.screenshot(settings.project_dir() / "screenshots" / "automation.png")
        page.close()


def test_stop_stops_everything_by_pid_and_keeps_the_data(platform, pg_conn):
    pids = platform.pids()
    servers = [i["pid"] for i in platform.supervisor_status()["locations"].values()]
    assert {"dagster-init", "dagster-webserver", "dagster-daemon", "sample-api"} <= set(pids)
    result = platform.script("stop.sh")
    assert result.returncode == 0, result.stdout + result.stderr
    for component, pid in pids.items():
        if component in ("dagster-init", "dagster-webserver", "dagster-daemon", "sample-api"):
            assert f"stopped {component} (pid {pid})" in result.stdout
    alive = [pid for pid in [*pids.values(), *servers] if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]  # fmt: skip
    assert alive == []
    for port in platform.ports.values():
        assert port_is_free("127.0.0.1", port)
    assert list((platform.platform_dir / "run").glob("*.pid")) == []
    # Data stays: the reporting tables and the run history are still there.
    assert scalar(pg_conn, "select count(*) from reporting.products_reporting") > 0
    assert scalar(pg_conn, "select count(*) from runs where status = 'SUCCESS'") >= 2
