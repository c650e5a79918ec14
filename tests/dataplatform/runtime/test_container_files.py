"""docker-compose.yaml and Dockerfile.data-manager, checked statically (no Docker engine here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

from dataplatform.runtime.code_locations import load_code_locations
from pyairbyte import settings

ROOT = settings.app_root()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Dockerfile instructions, with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile.data-manager").read_text()
    text = re.sub(r"\\\n", " ", text)
    return [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def enabled_locations():
    return [loc for loc in load_code_locations(settings.code_locations_file()) if loc.enabled]


def env_vars_in_dagster_yaml() -> set[str]:
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if set(node) == {"env"}:
                found.add(node["env"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load((ROOT / "platform" / "dagster.yaml").read_text()))
    return found


def test_compose_has_the_four_platform_services(compose):
    assert {"db", "data-manager", "dagster-webserver", "dagster-daemon"} <= set(compose["services"])
    db = compose["services"]["db"]
    assert db["image"] == "${POSTGRES_IMAGE:-postgres:15}"  # the official image by default
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pgdata" in compose["volumes"]


def test_data_manager_publishes_exactly_the_code_location_ports(compose):
    ports = compose["services"]["data-manager"]["ports"]
    assert ports == [f"127.0.0.1:{loc.port}:{loc.port}" for loc in enabled_locations()]
    command = compose["services"]["data-manager"]["command"]
    assert command == ["bash", "data-manager/scripts/dagster-init.sh"]
    assert compose["services"]["data-manager"]["environment"]["DAGSTER_GRPC_BIND_HOST"] == "0.0.0.0"


def test_workspace_points_at_the_data_manager_service(compose):
    workspace = yaml.safe_load((ROOT / "platform" / "workspace.yaml").read_text())
    servers = [e["grpc_server"] for e in workspace["load_from"]]
    assert [(s["location_name"], s["host"], s["port"]) for s in servers] == [
        (loc.name, loc.host, loc.port) for loc in enabled_locations()
    ]
    # Every host the workspace names is a service (or hostname) in compose.
    names = set(compose["services"]) | {
        s.get("hostname") for s in compose["services"].values() if s.get("hostname")
    }
    assert {s["host"] for s in servers} <= names


def test_webserver_on_3030(compose):
    web = compose["services"]["dagster-webserver"]
    assert web["ports"] == ["127.0.0.1:${DAGSTER_WEBSERVER_PORT:-3030}:3030"]
    assert web["command"][:7] == [
        "python", "-m", "dataplatform.runtime.dagster_webserver", "-h", "0.0.0.0", "-p", "3030",
    ]  # fmt: skip


def _mount(service: dict, target: str) -> tuple[str, str]:
    """(volume, mode) of the service's volume mounted at `target`."""
    for volume in service.get("volumes", []):
        source, _, rest = volume.partition(":")
        path, _, mode = rest.partition(":")
        if path == target:
            return source, mode or "rw"
    raise AssertionError(f"nothing mounted at {target}: {service.get('volumes')}")


def test_webserver_and_daemon_read_the_workspace_dagster_init_writes_on_a_shared_volume(compose):
    services = compose["services"]
    env = services["data-manager"]["environment"]
    shared = PurePosixPath(env["DATAPLATFORM_SHARED_WORKSPACE"])
    assert shared.is_absolute() and shared.name == "workspace.yaml"
    commands = {
        "dagster-webserver": ["python", "-m", "dataplatform.runtime.dagster_webserver"],
        "dagster-daemon": ["python", "-m", "dataplatform.runtime.dagster_daemon", "run"],
    }
    for name, prefix in commands.items():
        command = services[name]["command"]
        assert command[: len(prefix)] == prefix, command
        assert command[command.index("-w") + 1] == str(shared), command
        assert "platform/workspace.yaml" not in command  # the image's copy never changes
    # One named volume at the file's directory in all three: data-manager and the daemon write
    # (workspace, daemon report), the webserver only reads.
    mounts = {name: _mount(services[name], str(shared.parent)) for name in
              ("data-manager", "dagster-webserver", "dagster-daemon")}  # fmt: skip
    assert {volume for volume, _ in mounts.values()} == {"workspace"}
    assert "workspace" in compose["volumes"]
    assert {name: mode for name, (_, mode) in mounts.items()} == {
        "data-manager": "rw", "dagster-webserver": "ro", "dagster-daemon": "rw",
    }  # fmt: skip
    # reconcile's reloadWorkspace goes to the webserver service on its port.
    url = urlsplit(env["DAGSTER_WEBSERVER_URL"])
    assert (url.scheme, url.hostname, url.port) == ("http", "dagster-webserver", 3030)
    assert url.hostname in services


def test_the_daemon_reports_where_connector_add_in_data_manager_looks(compose):
    from dataplatform.runtime import paths

    services = compose["services"]
    shared = Path(services["data-manager"]["environment"]["DATAPLATFORM_SHARED_WORKSPACE"])
    daemon_dir = services["dagster-daemon"]["environment"]["DATAPLATFORM_PLATFORM_DIR"]
    assert Path(daemon_dir) == paths.shared_daemon_dir(shared)
    assert Path(daemon_dir).is_relative_to(shared.parent)  # on the shared volume


def test_compose_settings_are_valid_settings(compose, monkeypatch):
    from dataplatform import settings as platform_settings

    env = compose["services"]["data-manager"]["environment"]
    for name in ("DATAPLATFORM_SHARED_WORKSPACE", "DAGSTER_WEBSERVER_URL"):
        monkeypatch.setenv(name, env[name])
    shared = platform_settings.shared_workspace()
    assert shared.resolved_webserver_url() == "http://dagster-webserver:3030"
    assert str(shared.resolved_shared_workspace()) == env["DATAPLATFORM_SHARED_WORKSPACE"]


def test_the_image_has_the_shared_volume_mount_point_and_what_connector_add_rewrites(
    compose, dockerfile
):
    # A new named volume takes the owner of the image's directory: created as `app`, after USER.
    shared = PurePosixPath(compose["services"]["data-manager"]["environment"][
        "DATAPLATFORM_SHARED_WORKSPACE"]).parent  # fmt: skip
    user_line = dockerfile.index("USER app")
    mkdirs = [ln for ln in dockerfile[user_line:] if ln.startswith("RUN ") and "mkdir -p" in ln]
    assert any(f"{shared}/dagster-daemon" in ln for ln in mkdirs), mkdirs
    # `docker compose exec data-manager dataplatform connector add` rewrites the derived files.
    from dataplatform.runtime.derived_configs import committed_files

    copied = copied_paths(dockerfile)
    files = committed_files(ROOT)
    for path in (files.workspace, files.compose, files.dockerfile, files.helm_values,
                 files.instance_config):  # fmt: skip
        relative = path.relative_to(ROOT)
        assert str(relative) in copied or str(relative.parts[0]) in copied, relative


def test_every_dagster_yaml_setting_is_provided_to_every_dagster_process(compose):
    needed = env_vars_in_dagster_yaml()
    assert needed == {
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
    }
    for name in ("data-manager", "dagster-webserver", "dagster-daemon"):
        service = compose["services"][name]
        env = service["environment"]
        # The password comes as a secret file, which the image's entrypoint exports.
        assert needed - {"POSTGRES_PASSWORD"} <= set(env), f"{name} lacks {needed - set(env)}"
        assert "POSTGRES_PASSWORD" not in env
        assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
        assert service["secrets"] == ["postgres_password"]
        assert env["POSTGRES_HOST"] == "db"
        assert "DAGSTER_HOME" not in env  # set once, in the image, where dagster.yaml is copied


def test_settings_come_from_env_file_and_no_secret_is_committed(compose):
    text = (ROOT / "docker-compose.yaml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text  # compose refuses to start without it
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert example["POSTGRES_PASSWORD"] == ""
    # env_file would put the password into every container's env, which docker inspect shows.
    assert all("env_file" not in service for service in compose["services"].values())
    referenced = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert referenced <= set(example), (
        f"not documented in .env.example: {referenced - set(example)}"
    )
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_dagster_yaml_storage_run_queue_and_telemetry():
    config = yaml.safe_load((ROOT / "platform" / "dagster.yaml").read_text())
    for key, module in (
        ("run_storage", "dagster_postgres.run_storage"),
        ("event_log_storage", "dagster_postgres.event_log"),
        ("schedule_storage", "dagster_postgres.schedule_storage"),
    ):
        assert config[key]["module"] == module
    coordinator = config["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"
    assert coordinator["config"]["dequeue_interval_seconds"] == 1
    assert coordinator["config"]["tag_concurrency_limits"] == [
        {"key": "dataplatform/connector", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    assert config["telemetry"] == {"enabled": False}


def test_concurrency_tag_is_the_one_the_sync_jobs_set():
    from dagster_code.lib.sync import CONNECTOR_TAG

    config = yaml.safe_load((ROOT / "platform" / "dagster.yaml").read_text())
    keys = [limit["key"] for limit in config["run_coordinator"]["config"]["tag_concurrency_limits"]]
    assert keys == [CONNECTOR_TAG]


def test_dockerfile_copies_only_paths_that_exist(dockerfile):
    copies = [shlex.split(line)[1:] for line in dockerfile if line.startswith("COPY ")]
    assert copies
    for args in copies:
        sources = [a for a in args if not a.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"


def test_dockerfile_runs_as_non_root_with_locked_deps_and_build_time_preparation(dockerfile):
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    runs = " ".join(line for line in dockerfile if line.startswith("RUN "))
    assert "uv sync --frozen" in runs
    assert "python -m dataplatform.dbt.manifest" in runs  # dbt parse at build time
    assert "python -m dataplatform.runtime.preinstall_connectors" in runs
    env = " ".join(line for line in dockerfile if line.startswith("ENV "))
    assert "DBT_PROFILES_DIR=/app/dbt_models" in env
    assert "DAGSTER_GRPC_BIND_HOST=0.0.0.0" in env
    assert dockerfile[-1] == 'CMD ["bash", "data-manager/scripts/dagster-init.sh"]'


def test_dockerfile_exposes_the_code_location_ports(dockerfile):
    exposed = [line.split()[1:] for line in dockerfile if line.startswith("EXPOSE ")]
    assert exposed == [[str(loc.port) for loc in enabled_locations()]]


def copied_paths(dockerfile: list[str]) -> set[str]:
    """The sources of the Dockerfile's COPY lines (flags such as --chown left out)."""
    return {
        a.rstrip("/")
        for line in dockerfile
        if line.startswith("COPY ")
        for a in shlex.split(line)[1:-1]
        if not a.startswith("--")
    }


def test_image_copies_what_the_runtime_reads(dockerfile):
    copied = copied_paths(dockerfile)
    # Code locations, connector YAMLs, code-locations.json, dbt project and instance config.
    assert {"dagster_code", "data-manager", "dbt_models", "platform", "uv.lock"} <= copied


def test_dockerignore_keeps_local_state_out_but_not_what_is_copied(dockerfile):
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {".venv", ".project", ".env", "dbt_models/target"} <= set(ignored)
    copied = copied_paths(dockerfile)
    assert not copied & set(ignored)
