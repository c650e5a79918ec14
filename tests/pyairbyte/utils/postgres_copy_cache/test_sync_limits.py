"""Sync bounds: a source that never ends, never answers, or crashes, through `sync_connector`.

Real parts: a manifest connector YAML over a local HTTP server (or a local connector
executable), read by PyAirbyte into a CopyPostgresCache in the session's PostgreSQL.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import psutil
import pytest

from pyairbyte.utils.pyairbyte_sync import sync_connector
from tests.helpers import scalar
from tests.pyairbyte.utils.postgres_copy_cache.conftest import build_manifest, page_body, paged

SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
}
ROWS = [json.dumps({"id": i, "name": f"item {i}"}) for i in range(1, 11)]


@pytest.fixture
def connector(tmp_path, monkeypatch, local_api):
    """A connector YAML `source-bounds` for the local API's /items stream."""
    monkeypatch.setenv("CONNECTORS_DIR", str(tmp_path))
    (tmp_path / "manifests").mkdir()
    manifest = build_manifest(local_api.url, stream="items", schema=SCHEMA, primary_key=["id"])
    (tmp_path / "manifests" / "items.yaml").write_text(json.dumps(manifest))
    (tmp_path / "bounds.yaml").write_text(
        "version: 1\nname: source-bounds\nconnector_type: source\n"
        "source_manifest: manifests/items.yaml\nstreams: [items]\nconfig: {}\n"
    )
    return "source-bounds"


def _staged_files(cache) -> list:
    return [p for p in cache.cache_dir.rglob("*") if p.is_file()]


def _first_sync(connector, cache, local_api, pg_conn, schema) -> None:
    local_api.handler = paged(ROWS, page_size=4)
    result = sync_connector(connector, cache=cache)
    assert result["status"] == "success", result["error"]
    assert scalar(pg_conn, f"select count(*) from {schema}.items") == len(ROWS)


def endless(path: str, params: dict[str, str]) -> bytes:
    """A paginator that never ends: every page says there is another one."""
    page = int(params.get("page", "1"))
    return page_body([json.dumps({"id": page * 10 + i, "name": "x"}) for i in range(5)], page + 1)


def test_endless_paginator_stops_at_the_time_limit_keeps_the_table_and_staging(
    connector, local_api, make_cache, cache_schema, pg_conn
):
    cache = make_cache(cache_schema)
    _first_sync(connector, cache, local_api, pg_conn, cache_schema)

    local_api.handler = endless
    t0 = time.monotonic()
    result = sync_connector(connector, cache=cache, max_seconds=3)
    elapsed = time.monotonic() - t0
    print(f"endless paginator: stopped after {elapsed:.1f} s, {len(local_api.requests)} requests")

    assert result["status"] == "error"
    assert "past its limit of 3 s (max_seconds=)" in result["error"]
    assert "raise max_seconds=" in result["error"]
    assert elapsed < 10
    assert scalar(pg_conn, f"select count(*) from {cache_schema}.items") == len(ROWS)
    assert _staged_files(cache) == []
    # The CDK's worker threads were stopped with the read: no more requests reach the API.
    requests_after_stop = len(local_api.requests)
    time.sleep(1.5)
    assert len(local_api.requests) <= requests_after_stop + 1


def test_record_limit_from_env_fails_naming_the_setting(
    connector, local_api, make_cache, cache_schema, pg_conn, monkeypatch
):
    cache = make_cache(cache_schema)
    _first_sync(connector, cache, local_api, pg_conn, cache_schema)

    monkeypatch.setenv("SYNC_MAX_RECORDS", "25")
    local_api.handler = endless
    result = sync_connector(connector, cache=cache)

    assert result["status"] == "error"
    assert "more than its limit of 25 records (SYNC_MAX_RECORDS)" in result["error"]
    assert "raise SYNC_MAX_RECORDS (0 means no limit)" in result["error"]
    assert scalar(pg_conn, f"select count(*) from {cache_schema}.items") == len(ROWS)
    assert _staged_files(cache) == []


def test_limits_do_not_touch_a_sync_within_them(
    connector, local_api, make_cache, cache_schema, pg_conn, monkeypatch
):
    monkeypatch.setenv("SYNC_MAX_RECORDS", str(len(ROWS)))
    cache = make_cache(cache_schema)
    _first_sync(connector, cache, local_api, pg_conn, cache_schema)
    assert _staged_files(cache) == []


def test_source_that_never_answers_times_out(
    connector, local_api, make_cache, cache_schema, pg_conn, monkeypatch
):
    monkeypatch.setenv("SYNC_STOP_GRACE_SECONDS", "1")
    release = threading.Event()

    def never_answers(path, params):
        release.wait(60)
        return None

    local_api.handler = never_answers
    cache = make_cache(cache_schema)
    t0 = time.monotonic()
    try:
        result = sync_connector(connector, cache=cache, max_seconds=2)
    finally:
        release.set()
    elapsed = time.monotonic() - t0

    assert result["status"] == "error"
    assert "past its limit of 2 s (max_seconds=)" in result["error"]
    assert elapsed < 6
    assert scalar(pg_conn, f"select to_regclass('{cache_schema}.items') is null")


# --- connector processes ------------------------------------------------------------------------

CRASHING = """\
import sys
sys.stderr.write("Traceback (most recent call last):\\n")
sys.stderr.write("ModuleNotFoundError: No module named 'crashy_dependency'\\n")
sys.exit(1)
"""
HANGING = "import time\ntime.sleep(600)\n"


@pytest.fixture
def local_connector(tmp_path, monkeypatch, connector):
    """(script text) -> the connector's source runs as that local executable (a real process),
    placed under the connector install root like PyAirbyte's installed connectors."""
    import airbyte as ab

    from pyairbyte.utils import pyairbyte_sync

    install_root = tmp_path / "connectors"
    install_root.mkdir()
    monkeypatch.setenv("AIRBYTE_INSTALL_DIR", str(install_root))

    def use(script: str) -> None:
        executable = install_root / "source-local" / "bin" / "source-local"
        executable.parent.mkdir(parents=True, exist_ok=True)
        executable.write_text(f"#!{sys.executable}\n{script}")
        executable.chmod(0o755)
        monkeypatch.setattr(
            pyairbyte_sync,
            "_new_source",
            lambda _connector: ab.get_source(
                "source-local", local_executable=str(executable), config={}
            ),
        )

    return use


def test_connector_crashing_at_start_up_reports_its_own_error(
    connector, local_connector, make_cache, cache_schema
):
    local_connector(CRASHING)
    result = sync_connector(connector, cache=make_cache(cache_schema), max_seconds=60)
    assert result["status"] == "error"
    assert "No module named 'crashy_dependency'" in result["error"]
    assert "limit" not in result["error"]


def test_hanging_connector_process_is_killed_at_the_time_limit(
    connector, local_connector, make_cache, cache_schema
):
    local_connector(HANGING)
    t0 = time.monotonic()
    result = sync_connector(connector, cache=make_cache(cache_schema), max_seconds=3)
    elapsed = time.monotonic() - t0

    assert result["status"] == "error"
    assert "past its limit of 3 s (max_seconds=)" in result["error"]
    assert elapsed < 10
    children = psutil.Process().children(recursive=True)
    leftovers = [p for p in children if "source-local" in " ".join(p.cmdline())]
    assert leftovers == []
