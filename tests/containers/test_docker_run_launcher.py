"""The opt-in Docker run launcher: each run in a fresh container of the platform image.

The compose stack with docker-compose.docker-launcher.yaml on top: the daemon launches every run
through the engine's socket with dagster-docker's DockerRunLauncher (platform/dagster.docker.yaml).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.containers.conftest import make_stack, wait_for

PROJECT = "dataplatform-dockerrun"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
CONTAINER_TAG = "docker/container_id"  # dagster-docker tags each run with its container


@pytest.fixture(scope="module")
def stack(docker_engine, platform_image, tmp_path_factory):
    socket = docker_engine.host.removeprefix("unix://")
    gid = str(os.stat(socket).st_gid)  # the group the containers need to use the socket
    stack = make_stack(
        docker_engine,
        tmp_path_factory.mktemp("dockerrun"),
        PROJECT,
        compose_files=("docker-compose.yaml", "docker-compose.docker-launcher.yaml"),
        DOCKER_SOCKET=socket,
        DOCKER_GID=gid,
    )
    stack.down("-v")
    stack.up()
    assert stack.graphql().wait_for_locations(["sample_product_sync", "airbyte_sync"], 180)
    yield stack
    for container in docker_engine.docker("ps", "-aq", "--filter", "label=dagster/run_id").split():
        docker_engine.docker("rm", "-f", container, check=False)
    stack.down("-v")


def _tags(client, run_id: str) -> dict[str, str]:
    data = client.query(
        "query($id: ID!) { runOrError(runId: $id) { ... on Run { tags { key value } } } }",
        {"id": run_id},
    )
    return {t["key"]: t["value"] for t in data["runOrError"]["tags"]}


def _messages(client, run_id: str) -> list[str]:
    data = client.query(
        "query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection {"
        " events { __typename ... on MessageEvent { message } } } } }",
        {"id": run_id},
    )
    return [e.get("message") or "" for e in data["logsForRun"]["events"]]


def _state(stack, container: str) -> dict:
    return json.loads(stack.engine.docker("inspect", "--format", "{{json .State}}", container))


def _finished(client, run_id: str, timeout: float) -> str:
    return wait_for(
        lambda: (s := client.run_status(run_id)) in FINISHED and s, timeout, f"run {run_id}", 2
    )


def _running_container(stack, client, run_id: str) -> str:
    container = wait_for(
        lambda: _tags(client, run_id).get(CONTAINER_TAG), 300, "the run's container", 1
    )
    wait_for(lambda: client.run_status(run_id) == "STARTED", 300, "the run to start", 1)
    return container


def test_a_run_executes_its_steps_in_a_fresh_container(stack):
    client = stack.graphql()
    services = set(stack.compose("ps", "-aq").split())
    run = client.launch_run("sample_product_sync", "sample_product_sync_pipeline")
    assert _finished(client, run.run_id, 600) == "SUCCESS"
    container = _tags(client, run.run_id)[CONTAINER_TAG]
    assert any(f"in a new container {container}" in m for m in _messages(client, run.run_id))
    # A container of its own, made for this run, not one of the compose services ...
    assert container[:12] not in {s[:12] for s in services}
    labels = json.loads(
        stack.engine.docker("inspect", "--format", "{{json .Config.Labels}}", container)
    )
    assert labels["dagster/run_id"] == run.run_id
    # ... where the steps ran: its output holds the run's step events, and it exited cleanly.
    logs = stack.engine.logs(container)
    assert f"{run.run_id} - " in logs and "STEP_SUCCESS" in logs, logs[-2000:]
    assert _state(stack, container)["ExitCode"] == 0


def test_terminating_a_run_from_the_ui_stops_its_container(stack):
    client = stack.graphql()
    run = client.launch_run(
        "airbyte_sync", "airbyte_sync_pipeline", tags={"dagster/max_retries": "0"}
    )
    container = _running_container(stack, client, run.run_id)
    assert _state(stack, container)["Running"]
    answer = client.query(
        "mutation($id: String!) { terminateRun(runId: $id) { __typename } }", {"id": run.run_id}
    )
    assert answer["terminateRun"]["__typename"] == "TerminateRunSuccess", answer
    # The engine stops the container at once (killing it after stop_timeout); run monitoring
    # then marks the run CANCELED (platform/dagster.docker.yaml says why it is not the worker).
    wait_for(lambda: not _state(stack, container)["Running"], 60, "the container to stop")
    assert _finished(client, run.run_id, 300) == "CANCELED"


def test_run_monitoring_fails_a_run_whose_container_was_killed(stack):
    client = stack.graphql()
    run = client.launch_run(
        "airbyte_sync", "airbyte_sync_pipeline", tags={"dagster/max_retries": "0"}
    )
    container = _running_container(stack, client, run.run_id)
    stack.engine.docker("kill", container)
    assert _finished(client, run.run_id, 300) == "FAILURE"
    assert any("Container status is exited" in m for m in _messages(client, run.run_id))
