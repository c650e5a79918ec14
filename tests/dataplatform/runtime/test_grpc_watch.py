"""The webserver's code-server watch runs at DAGSTER_GRPC_WATCH_SECONDS, and still notices a
code server replaced behind its back (no Reload): the UI shows the new server's code.

A plain `dagster api grpc` process serves a temporary module; the webserver runs through
dataplatform.runtime.dagster_webserver. The server is stopped, its module edited and a new
server started on the same port; the webserver's watch sees a new server id and refreshes.

That a new watch thread polls at the interval the platform sets is tested by running one, in
test_dagster_internals.py; the second test here proves the webserver's workspace starts its
threads without an interval of its own (so the platform's applies).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from dataplatform.runtime.dagster_graphql import DagsterGraphQL
from dataplatform.runtime.processes import ephemeral_port, terminate
from pyairbyte import settings
from tests.helpers import wait_until
from tests.ports import free_code_location_ports

MODULE = "grpc_watch_test_location"
QUERY = "{ assetNodes { assetKey { path } description } }"


def _write(package_dir, description: str) -> None:
    (package_dir / f"{MODULE}.py").write_text(
        textwrap.dedent(f'''
            from dagster import Definitions, asset


            @asset(description="{description}")
            def watched_numbers() -> list[int]:
                return [1, 2, 3]


            defs = Definitions(assets=[watched_numbers])
        ''')
    )


def _server(port: int, env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", "api", "grpc", "-m", MODULE, "-h", "127.0.0.1",
         "-p", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


@pytest.fixture
def supervised(tmp_path, request):
    """A code server and the platform's webserver (named `supervised` for the platform tier),
    watching every `request.param` seconds."""
    package_dir = tmp_path / "code"
    package_dir.mkdir()
    _write(package_dir, "first server")
    [port] = free_code_location_ports(1)
    (tmp_path / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server: {{host: 127.0.0.1, port: {port}, location_name: watched}}\n"
    )
    (tmp_path / "home").mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "DAGSTER_GRPC_WATCH_SECONDS": str(request.param),
        "PYTHONPATH": os.pathsep.join([str(package_dir), os.environ.get("PYTHONPATH", "")]),
    }
    log = open(tmp_path / "servers.log", "ab")  # closed below
    procs = {"server": _server(port, env, log)}
    web_port = ephemeral_port()
    procs["web"] = subprocess.Popen(
        [sys.executable, "-m", "dataplatform.runtime.dagster_webserver", "-h", "127.0.0.1",
         "-p", str(web_port), "-w", str(tmp_path / "workspace.yaml")],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        cwd=settings.app_root(),
    )  # fmt: skip
    graphql = DagsterGraphQL(f"http://127.0.0.1:{web_port}")

    def restart_with(description: str) -> None:
        terminate(procs["server"].pid, timeout=20, popen=procs["server"])
        _write(package_dir, description)
        procs["server"] = _server(port, env, log)

    try:
        loaded = graphql.wait_for_locations(["watched"], timeout=120)
        assert loaded["watched"].loaded, loaded
        yield graphql, restart_with
    finally:
        for proc in procs.values():
            terminate(proc.pid, timeout=20, popen=proc)
        log.close()


def _description(graphql) -> str | None:
    try:
        nodes = graphql.query(QUERY)["assetNodes"]
    except Exception:  # the location is reconnecting: no answer yet
        return None
    return next((n["description"] for n in nodes if n["assetKey"]["path"] == ["watched_numbers"]),
                None)  # fmt: skip


@pytest.mark.parametrize("supervised", [2], indirect=True)
def test_a_replaced_code_server_is_noticed_without_a_reload(supervised):
    graphql, restart_with = supervised
    assert _description(graphql) == "first server"
    restart_with("second server")
    started = time.monotonic()
    wait_until(lambda: _description(graphql) == "second server", 60, "the webserver to notice")
    print(f"replaced server noticed after {time.monotonic() - started:.1f}s (watch every 2 s)")


@pytest.mark.parametrize("supervised", [30], indirect=True)
def test_the_watch_interval_is_the_setting_not_dagsters_second(supervised):
    graphql, restart_with = supervised
    restart_with("second server")
    time.sleep(8)  # Dagster's own 1 s watch would have refreshed by now
    assert _description(graphql) in ("first server", None)
