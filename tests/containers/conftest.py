"""The container tier (`make test-containers`): the real image and compose file on a real engine.

Every test here is marked `containers` and runs only in that tier. The engine, the base images
and the platform image are built once per session (tests/containers/engine.py); each test module
brings up its own compose project and takes it down with its volumes at the end.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from dataplatform.runtime.dagster_graphql import DagsterGraphQL
from tests.containers import engine as engines


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.containers)


@pytest.fixture(scope="session")
def docker_engine():
    eng = engines.engine()
    yield eng
    eng.stop()


@pytest.fixture(scope="session")
def platform_image(docker_engine) -> str:
    engines.base_images(docker_engine)
    engines.build_platform_image(docker_engine)
    return engines.PLATFORM_IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    """One compose project from the repository's docker-compose.yaml, with a test .env."""

    engine: engines.Engine
    project: str
    env_file: Path
    password: str
    webserver_port: int
    compose_files: tuple[str, ...] = ("docker-compose.yaml",)

    def compose(self, *args: str, timeout: float = 900, check: bool = True, **kw) -> str:
        files = [a for f in self.compose_files for a in ("-f", f)]
        return self.engine.compose(
            "-p",
            self.project,
            "--env-file",
            str(self.env_file),
            *files,
            *args,
            timeout=timeout,
            check=check,
            **kw,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    def graphql(self) -> DagsterGraphQL:
        return DagsterGraphQL(self.url)

    def container(self, service: str) -> str:
        return self.compose("ps", "-a", "-q", service).strip()

    def services(self) -> list[dict]:
        out = self.compose("ps", "-a", "--format", "json")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def psql(self, sql: str) -> str:
        return self.compose(
            "exec", "-T", "db", "psql", "-U", "dataplatform", "-d", "dataplatform", "-Atc", sql
        ).strip()

    def up(self) -> float:
        start = time.monotonic()
        self.compose("up", "-d", "--wait", "--no-build", timeout=900)
        return time.monotonic() - start

    def down(self, *extra: str) -> None:
        self.compose("down", "--remove-orphans", *extra, timeout=300)


def make_stack(
    engine, tmp_path: Path, project: str, compose_files=("docker-compose.yaml",), **env: str
) -> Stack:
    password = "pw-" + secrets.token_urlsafe(18)
    port = free_port()
    values = {
        "POSTGRES_PASSWORD": password,
        "POSTGRES_IMAGE": engines.POSTGRES_IMAGE,
        "PYTHON_IMAGE": engines.PYTHON_IMAGE,
        "DAGSTER_WEBSERVER_PORT": str(port),
        **env,
    }
    env_file = tmp_path / f"{project}.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return Stack(engine, project, env_file, password, port, tuple(compose_files))


def wait_for(predicate, timeout: float, what: str, poll: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
