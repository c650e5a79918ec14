"""The location factory without services: what it builds, the sync's metadata and its Failure."""

from __future__ import annotations

import pytest
from dagster import AssetKey, Failure, MaterializeResult, build_asset_context

from dagster_code.lib.connector_location import ConnectorLocation


def _location(**overrides) -> ConnectorLocation:
    args = {
        "name": "shop",
        "connector": "shop-api",
        "streams": ["orders"],
        "dbt_source": "shop",
        "sync_asset_name": "sync_shop",
        "transform_asset_name": "transform_shop_data",
        "job_name": "shop_pipeline",
        "sync_description": "Sync orders.",
        "transform_description": "Build the shop models.",
        "job_description": "Sync, then build.",
    }
    return ConnectorLocation(**{**args, **overrides})


def test_the_declaration_becomes_two_assets_a_tagged_job_and_no_schedule():
    location = _location()
    graph = location.defs.resolve_asset_graph()
    assert graph.get(AssetKey("transform_shop_data")).parent_keys == {AssetKey("sync_shop")}
    job = location.defs.resolve_job_def("shop_pipeline")
    assert job.tags == {"dataplatform/connector": "shop-api"}
    assert job.executor_def.name == "in_process"
    assert location.defs.get_repository_def().schedule_defs == []
    # The guide's modules export these objects; the factory builds each once.
    assert location.sync_asset is location.sync_asset


def test_a_declared_schedule_runs_the_pipeline_job():
    location = _location(schedule="0 6 * * *")
    (schedule,) = location.defs.get_repository_def().schedule_defs
    assert (schedule.name, schedule.cron_schedule, schedule.job_name) == (
        "shop_pipeline_schedule",
        "0 6 * * *",
        "shop_pipeline",
    )


def _fake_sync(monkeypatch, result: dict) -> list:
    calls = []

    def sync_connector(connector, streams):
        calls.append((connector, streams))
        return {"connector": connector, **result}

    import pyairbyte.utils.pyairbyte_sync as module

    monkeypatch.setattr(module, "sync_connector", sync_connector)
    return calls


def test_a_successful_sync_is_materialized_with_its_metadata(monkeypatch):
    calls = _fake_sync(
        monkeypatch,
        {
            "status": "success",
            "result": {"orders": 12},
            "tables": {"orders": "pyairbyte_cache.orders"},
            "cache_type": "CopyPostgresCache",
            "cache_schema": "pyairbyte_cache",
            "duration_seconds": 1.5,
        },
    )
    result = _location().sync_asset(build_asset_context())
    assert calls == [("shop-api", ["orders"])]
    assert isinstance(result, MaterializeResult)
    metadata = {k: v.value for k, v in result.metadata.items()}
    assert metadata["dagster/table_name"] == "pyairbyte_cache.orders"
    assert metadata["records_synced"] == 12 and metadata["status"] == "success"


def test_a_failed_sync_raises_failure_with_the_sources_error(monkeypatch):
    _fake_sync(monkeypatch, {"status": "error", "error": "HTTP 500 from the API"})
    with pytest.raises(Failure) as failure:
        _location().sync_asset(build_asset_context())
    assert failure.value.description == "PyAirbyte sync of shop-api failed: HTTP 500 from the API"
    assert failure.value.metadata["error"].value == "HTTP 500 from the API"
    assert failure.value.metadata["status"].value == "error"
