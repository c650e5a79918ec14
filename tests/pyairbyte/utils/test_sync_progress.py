"""Live progress of a running sync: records and records/s per stream, every SYNC_PROGRESS_SECONDS.

Real parts: a manifest connector over a local HTTP API that sleeps before every page, read by
PyAirbyte into a CopyPostgresCache in the session's PostgreSQL; once through `sync_connector`,
once through a Dagster in-process run of a connector location's sync asset.
"""

# ruff: noqa: F401, F811 -- the cache tests' fixtures, imported to be used here

from __future__ import annotations

import json
import re
import time

import pytest

from pyairbyte.utils.pyairbyte_sync import sync_connector
from pyairbyte.utils.sync_limits import SyncBudget
from tests.pyairbyte.utils.postgres_copy_cache.conftest import (
    airbyte_environment,
    build_manifest,
    cache_schema,
    local_api,
    make_cache,
    paged,
)

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
ROWS = [json.dumps({"id": i, "name": f"item {i}"}) for i in range(1, 31)]
PAGE_SECONDS = 0.25
# "items 12 records (8.0/s)": a stream, its records so far, and its rate.
PROGRESS = re.compile(r"sync of source-slow: .*items (\d+) records \((\d+\.\d)/s\)")


@pytest.fixture
def slow_connector(tmp_path, monkeypatch, local_api):
    """`source-slow`: 30 records in pages of 3, the API sleeping PAGE_SECONDS before each."""
    monkeypatch.setenv("CONNECTORS_DIR", str(tmp_path))
    monkeypatch.setenv("SYNC_PROGRESS_SECONDS", "0.5")
    (tmp_path / "manifests").mkdir()
    manifest = build_manifest(local_api.url, stream="items", schema=SCHEMA, primary_key=["id"])
    (tmp_path / "manifests" / "items.yaml").write_text(json.dumps(manifest))
    (tmp_path / "slow.yaml").write_text(
        "version: 1\nname: source-slow\nconnector_type: source\n"
        "source_manifest: manifests/items.yaml\nstreams: [items]\nconfig: {}\n"
    )
    pages = paged(ROWS, page_size=3)

    def slow(path, params):
        time.sleep(PAGE_SECONDS)
        return pages(path, params)

    local_api.handler = slow
    return "source-slow"


def _progress_events(lines: list[str]) -> list[tuple[int, float]]:
    return [(int(m.group(1)), float(m.group(2))) for line in lines if (m := PROGRESS.search(line))]


def test_a_slow_sync_reports_records_and_rate_per_stream_while_it_runs(
    slow_connector,
    make_cache,
    cache_schema,
):
    lines: list[tuple[float, str]] = []
    t0 = time.monotonic()
    result = sync_connector(
        slow_connector,
        cache=make_cache(cache_schema),
        progress=lambda line: lines.append((time.monotonic() - t0, line)),
    )
    ended = time.monotonic() - t0
    print(f"sync took {ended:.1f} s; progress lines:", *(f"{t:.1f}s {m}" for t, m in lines))

    assert result["status"] == "success", result["error"]
    assert result["result"] == {"items": len(ROWS)}
    events = _progress_events([line for _, line in lines])
    assert len(events) >= 3
    assert all(t < ended for t, _ in lines)
    counts = [count for count, _ in events]
    assert counts == sorted(counts) and 0 < counts[-1] <= len(ROWS)
    assert any(rate > 0 for _, rate in events)


def test_progress_can_be_turned_off(slow_connector, make_cache, cache_schema, monkeypatch):
    monkeypatch.setenv("SYNC_PROGRESS_SECONDS", "0")
    lines: list[str] = []
    result = sync_connector(slow_connector, cache=make_cache(cache_schema), progress=lines.append)
    assert result["status"] == "success", result["error"]
    assert lines == []


def test_progress_line_names_each_stream_with_its_rate_since_the_last_line():
    budget = SyncBudget("source-x", max_seconds=0, max_records=0)
    assert "no record yet" in budget.progress_line()
    budget.stream_records.update(items=50, users=5)
    first = budget.progress_line()
    assert "55 records read" in first
    assert re.search(r"items 50 records \(\d+\.\d/s\), users 5 records \(\d+\.\d/s\)", first)
    time.sleep(0.2)
    assert "items 50 records (0.0/s)" in budget.progress_line()  # nothing new since the last


def test_a_broken_progress_callable_does_not_fail_the_sync(
    slow_connector,
    make_cache,
    cache_schema,
):
    def broken(line: str) -> None:
        raise RuntimeError("log sink gone")

    result = sync_connector(slow_connector, cache=make_cache(cache_schema), progress=broken)
    assert result["status"] == "success", result["error"]


def test_progress_reaches_the_dagster_run_log(
    slow_connector, make_cache, cache_schema, monkeypatch
):
    """A connector location's sync asset, run in process: the run's log has the progress lines."""
    from dagster import DagsterInstance, materialize

    from dagster_code.lib.connector_location import ConnectorLocation
    from pyairbyte.utils import pyairbyte_sync

    cache = make_cache(cache_schema)
    real_sync = pyairbyte_sync.sync_connector
    # The asset syncs into the default cache; this test's schema keeps the session's tables apart.
    monkeypatch.setattr(
        pyairbyte_sync,
        "sync_connector",
        lambda name, streams=None, **kwargs: real_sync(name, streams, cache=cache, **kwargs),
    )
    location = ConnectorLocation(
        name="slow_progress",
        connector=slow_connector,
        streams=["items"],
        dbt_source="slow_progress",
        sync_asset_name="sync_slow",
        transform_asset_name="transform_slow",
        job_name="slow_progress_pipeline",
        sync_description="sync",
        transform_description="transform",
        job_description="job",
    )
    with DagsterInstance.ephemeral() as instance:
        result = materialize([location.sync_asset], instance=instance)
        assert result.success
        messages = [
            entry.user_message for entry in instance.all_logs(result.run_id) if entry.user_message
        ]
    events = _progress_events(messages)
    print("progress in the run's log:", *(m for m in messages if PROGRESS.search(m)))
    assert len(events) >= 3
