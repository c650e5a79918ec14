"""platform/dagster.docker.yaml is platform/dagster.yaml with the Docker run launcher, nothing else.

The compose deployment's opt-in run isolation (docker-compose.docker-launcher.yaml) points
DAGSTER_HOME at the second file; the container tier runs it for real (tests/containers).
"""

from __future__ import annotations

from pathlib import Path

import yaml

PLATFORM = Path(__file__).resolve().parents[3] / "platform"


def _load(name: str) -> dict:
    return yaml.safe_load((PLATFORM / name).read_text())


def test_the_docker_instance_differs_only_in_its_run_launcher():
    default, docker = _load("dagster.yaml"), _load("dagster.docker.yaml")
    assert {k: v for k, v in docker.items() if k != "run_launcher"} == {
        k: v for k, v in default.items() if k != "run_launcher"
    }
    assert default["run_launcher"]["class"] == "MonitoredRunLauncher"
    assert (docker["run_launcher"]["module"], docker["run_launcher"]["class"]) == (
        "dagster_docker",
        "DockerRunLauncher",
    )


def test_run_containers_get_the_settings_the_storages_and_samples_read():
    launcher = _load("dagster.docker.yaml")["run_launcher"]["config"]
    storage_env = {
        v["env"] for v in _load("dagster.yaml")["run_storage"]["config"]["postgres_db"].values()
    }
    assert storage_env <= set(launcher["env_vars"])
    assert launcher["image"] == {"env": "DAGSTER_RUN_IMAGE"}
    assert launcher["network"] == {"env": "DAGSTER_RUN_NETWORK"}
