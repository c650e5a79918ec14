"""docker-compose.yaml and Dockerfile.data-manager, run for real: the deployment a team runs.

One compose project for the module, brought up with `docker compose up -d --wait` from the
repository's compose file as it is (only the images are the Debian stand-ins, and the password
is a fresh random one in a test .env). The tests run in order, as an operator would: up, load,
run the sample pipelines, add a connector inside the container, kill a container mid-run, check
users, ports and secrets, then down, up again and down -v.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from dataplatform.local.up import SAMPLE_RUN_WAVES
from tests.containers.conftest import make_stack, wait_for
from tests.containers.engine import REPO_ROOT


def code_locations() -> list[dict]:
    path = REPO_ROOT / "data-manager/resources/dagster/code-locations.json"
    return [e for e in json.loads(path.read_text())["code_locations"] if e.get("enabled", True)]


PROJECT = "dataplatform-test"
EXPECTED_LOCATIONS = {"dbt_poc", "airbyte_sync", "sample_product_sync"}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
UNFINISHED = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}

# A copy of the sample connector under another name and stream, as a user would add one.
NEW_CONNECTOR = """
set -e
mkdir -p /tmp/newconn/manifests
sed -e 's/stream_names: \\[products\\]/stream_names: [gadgets]/' \\
    -e 's/^    name: products/    name: gadgets/' \\
    data-manager/external-connectors/manifests/sample-products.yaml \\
    > /tmp/newconn/manifests/gadgets.yaml
sed -e 's/^name: sample-connector/name: gadgets-connector/' \\
    -e 's/^streams: \\[products\\]/streams: [gadgets]/' \\
    -e 's|manifests/sample-products.yaml|manifests/gadgets.yaml|' \\
    -e '/^schedule:/,$d' \\
    data-manager/external-connectors/sample-connector.yaml > /tmp/newconn/gadgets.yaml
"""


@pytest.fixture(scope="module")
def stack(docker_engine, platform_image, tmp_path_factory):
    stack = make_stack(docker_engine, tmp_path_factory.mktemp("compose"), PROJECT)
    stack.down("-v")  # what a killed earlier run left
    stack.up_seconds = stack.up()
    yield stack
    stack.down("-v")


def _runs_to_finish(client, run_ids: list[str], timeout: float) -> dict[str, str]:
    def finished():
        status = {r: client.run_status(r) for r in run_ids}
        return status if all(s in FINISHED for s in status.values()) else None

    return wait_for(finished, timeout, f"runs {run_ids} to finish", poll=3)


def test_up_waits_until_every_service_is_healthy(stack):
    services = {s["Service"]: s for s in stack.services()}
    assert set(services) == {
        "db",
        "data-manager",
        "dagster-webserver",
        "dagster-daemon",
        "sample-api",
    }
    for name, service in services.items():
        assert service["State"] == "running", (name, service["Status"])
        assert service["Health"] == "healthy", (name, service["Status"])
    # dagster-init started one gRPC code server per enabled location, each on its published
    # port (Dagster's own health check, from the host).
    for entry in code_locations():
        check = subprocess.run(
            [
                str(REPO_ROOT / ".venv/bin/dagster"),
                "api",
                "grpc-health-check",
                "--host",
                "127.0.0.1",
                "--port",
                str(entry["port"]),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, (entry["name"], check.stdout, check.stderr)
    print(f"\n[containers] compose up --wait: {stack.up_seconds:.1f} s")


def test_every_location_loads_over_the_published_port(stack):
    locations = stack.graphql().wait_for_locations(sorted(EXPECTED_LOCATIONS), timeout=120)
    assert {n for n, s in locations.items() if s.loaded} == EXPECTED_LOCATIONS


def test_sample_pipelines_succeed_and_fill_the_reporting_tables(stack):
    client = stack.graphql()
    for wave in SAMPLE_RUN_WAVES:
        runs = [client.launch_run(location, job) for location, job in wave]
        status = _runs_to_finish(client, [r.run_id for r in runs], timeout=600)
        assert set(status.values()) == {"SUCCESS"}, status
    for table in ("products_reporting", "faker_users_reporting", "connector_row_counts"):
        assert int(stack.psql(f"select count(*) from reporting.{table}")) > 0, table


def test_connector_add_inside_the_container_is_served_live(stack):
    stack.compose("exec", "-T", "data-manager", "sh", "-c", NEW_CONNECTOR)
    out = stack.compose(
        "exec",
        "-T",
        "data-manager",
        "dataplatform",
        "connector",
        "add",
        "gadgets",
        "--connector-yaml",
        "/tmp/newconn/gadgets.yaml",
        timeout=600,
    )
    assert "the change is served by the running platform" in out, out
    client = stack.graphql()
    assert client.wait_for_locations(["gadgets"], timeout=120)["gadgets"].loaded
    run = client.launch_run("gadgets", "gadgets_pipeline")
    assert _runs_to_finish(client, [run.run_id], timeout=600) == {run.run_id: "SUCCESS"}
    assert int(stack.psql("select count(*) from reporting.gadgets_reporting")) > 0


def test_a_killed_data_manager_fails_or_retries_the_run_and_serves_again(stack):
    client = stack.graphql()
    run = client.launch_run("sample_product_sync", "sample_product_sync_pipeline")
    wait_for(lambda: client.run_status(run.run_id) == "STARTED", 300, "the run to start", 1)
    stack.engine.docker("kill", stack.container("data-manager"))
    # The restart policy brings it back; start it if the engine counts the kill as a stop.
    stack.compose("up", "-d", "--wait", "--no-build", "data-manager", timeout=600)

    assert _runs_to_finish(client, [run.run_id], timeout=600)[run.run_id] == "FAILURE"

    def no_run_in_progress():
        rows = client.query("{ runsOrError { ... on Runs { results { runId status } } } }")
        runs = rows["runsOrError"]["results"]
        return runs if not any(r["status"] in UNFINISHED for r in runs) else None

    # The daemon may retry the failed run (run_retries); nothing stays STARTED either way.
    runs = wait_for(no_run_in_progress, 900, "every run to finish", poll=5)
    assert all(r["status"] in FINISHED for r in runs), runs
    assert client.wait_for_locations(sorted(EXPECTED_LOCATIONS), timeout=180)
    again = client.launch_run("dbt_poc", "dbt_poc_pipeline")
    assert _runs_to_finish(client, [again.run_id], timeout=600)[again.run_id] == "SUCCESS"


def test_processes_run_as_non_root_and_only_loopback_ports_are_published(stack):
    for service in stack.services():
        container = service["ID"]
        processes = stack.engine.docker("top", container, "-eo", "pid,uid,comm").splitlines()[1:]
        assert processes, service["Service"]
        for line in processes:
            _pid, uid, comm = line.split(None, 2)
            assert uid != "0", f"{service['Service']}: {comm} runs as root"
        ports = json.loads(
            stack.engine.docker("inspect", "--format", "{{json .NetworkSettings.Ports}}", container)
        )
        for bindings in (ports or {}).values():
            for binding in bindings or []:
                assert binding["HostIp"] == "127.0.0.1", (service["Service"], binding)


def test_no_secret_in_inspect_history_logs_or_run_storage(stack):
    eng = stack.engine
    containers = [s["ID"] for s in stack.services()]
    images = {eng.docker("inspect", "--format", "{{.Image}}", c).strip() for c in containers}
    where = {
        "docker inspect (containers)": eng.docker("inspect", *containers),
        "docker inspect (images)": eng.docker("image", "inspect", *images),
        "docker history": "".join(eng.docker("history", "--no-trunc", i) for i in images),
        "compose logs": stack.compose("logs", "--no-color"),
        "Dagster's event log": stack.psql(
            "select count(*) from event_logs where event like '%" + stack.password + "%'"
        ),
    }
    assert where["Dagster's event log"] == "0"
    for place, text in where.items():
        assert stack.password not in text, f"the password appears in {place}"


def test_down_keeps_the_data_and_down_v_removes_it(stack):
    before = int(stack.psql("select count(*) from reporting.products_reporting"))
    stack.down()
    stack.up()
    assert int(stack.psql("select count(*) from reporting.products_reporting")) == before
    assert stack.graphql().wait_for_locations(sorted(EXPECTED_LOCATIONS), timeout=180)
    stack.down("-v")
    volumes = stack.engine.docker(
        "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"
    )
    assert volumes.strip() == ""
