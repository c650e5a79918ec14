"""The location factory without services: what it builds, the sync's metadata and its Failure."""

from __future__ import annotations

import pytest
from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    Failure,
    MaterializeResult,
    build_asset_context,
)

from dagster_code.lib.cache_tables import TableStats
from dagster_code.lib.connector_location import ConnectorLocation
from pyairbyte.utils.connector_automation import Automation, ScheduleSettings


def _location(**overrides) -> ConnectorLocation:
    args = {
        "name": "shop",
        "connector": "shop-api",
        "streams": ["products"],
        # A dbt source of the repository's project, so the transform has models to build.
        "dbt_source": "sample_connector",
        "sync_asset_name": "sync_shop",
        "transform_asset_name": "transform_shop_data",
        "job_name": "shop_pipeline",
        "sync_description": "Sync orders.",
        "transform_description": "Build the shop models.",
        "job_description": "Sync, then build.",
    }
    return ConnectorLocation(**{**args, **overrides})


def test_the_declaration_becomes_one_asset_per_table_a_tagged_job_and_no_schedule():
    location = _location()
    graph = location.defs.resolve_asset_graph()
    table = AssetKey(["pyairbyte_cache", "products"])
    assert graph.get(AssetKey("staging_products")).parent_keys == {table}
    assert graph.get(AssetKey("products_reporting")).parent_keys == {AssetKey("staging_products")}
    # The guide's names are the ops' names; the sync's streams can be materialized one by one.
    assert location.sync_asset.node_def.name == "sync_shop" and location.sync_asset.can_subset
    assert location.sync_asset.keys == {table}
    assert location.transform_asset.node_def.name == "transform_shop_data"
    assert location.transform_asset.keys == {
        AssetKey("staging_products"),
        AssetKey("products_reporting"),
    }
    # The cross-connector model reads another source too: dbt_poc's, not this location's.
    assert AssetKey("connector_row_counts") not in graph.materializable_asset_keys
    job = location.defs.resolve_job_def("shop_pipeline")
    assert job.tags == {"dataplatform/connector": "shop-api"}
    assert job.executor_def.name == "in_process"
    assert location.defs.get_repository_def().schedule_defs == []
    # The guide's modules export these objects: they must be the very ones the location serves.
    served = location.defs.assets
    assert any(a is location.sync_asset for a in served)
    assert any(a is location.transform_asset for a in served)


def test_a_declared_schedule_runs_the_pipeline_job():
    automation = Automation(schedule=ScheduleSettings("0 6 * * *", "Europe/Stockholm"))
    location = _location(automation=automation)
    (schedule,) = location.defs.get_repository_def().schedule_defs
    assert (schedule.name, schedule.cron_schedule, schedule.job_name) == (
        "shop_pipeline_schedule",
        "0 6 * * *",
        "shop_pipeline",
    )
    assert schedule.execution_timezone == "Europe/Stockholm"
    assert schedule.default_status == DefaultScheduleStatus.STOPPED


def _fake_sync(monkeypatch, result: dict) -> list:
    calls = []

    def sync_connector(connector, streams, **kwargs):
        calls.append((connector, streams))
        return {"connector": connector, **result}

    import pyairbyte.utils.pyairbyte_sync as module

    monkeypatch.setattr(module, "sync_connector", sync_connector)
    # The table after the sync, as the cache database would describe it.
    monkeypatch.setattr(
        "dagster_code.lib.sync.table_stats",
        lambda tables: {
            t: TableStats(t, 40, (("id", "bigint"), ("title", "character varying"))) for t in tables
        },
    )
    return calls


def test_a_successful_sync_is_materialized_with_its_metadata(monkeypatch):
    calls = _fake_sync(
        monkeypatch,
        {
            "status": "success",
            "result": {"products": 12},
            "tables": {"products": "pyairbyte_cache.products"},
            "cache_type": "CopyPostgresCache",
            "cache_schema": "pyairbyte_cache",
            "duration_seconds": 1.5,
        },
    )
    (result,) = list(_location().sync_asset(build_asset_context()))
    assert calls == [("shop-api", ["products"])]
    assert isinstance(result, MaterializeResult)
    assert result.asset_key == AssetKey(["pyairbyte_cache", "products"])
    metadata = {k: v.value for k, v in result.metadata.items()}
    assert metadata["dagster/table_name"] == "pyairbyte_cache.products"
    assert metadata["dagster/row_count"] == 40  # the table holds more than this run synced
    assert [(c.name, c.type) for c in metadata["dagster/column_schema"].columns] == [
        ("id", "bigint"),
        ("title", "character varying"),
    ]
    assert metadata["records_synced"] == 12 and metadata["duration_seconds"] == 1.5


def test_a_failed_sync_raises_failure_with_the_sources_error(monkeypatch):
    _fake_sync(monkeypatch, {"status": "error", "error": "HTTP 500 from the API"})
    with pytest.raises(Failure) as failure:
        list(_location().sync_asset(build_asset_context()))
    assert failure.value.description == "PyAirbyte sync of shop-api failed: HTTP 500 from the API"
    assert failure.value.metadata["error"].value == "HTTP 500 from the API"
    assert failure.value.metadata["status"].value == "error"


def test_dbt_poc_holds_only_the_models_no_connector_owns(monkeypatch):
    from dagster_code.lib.connector_location import DbtModelsLocation

    def declare() -> DbtModelsLocation:
        return DbtModelsLocation(
            name="shared",
            models_asset_name="shared_models",
            models_description="Cross-connector models.",
            job_name="shared_pipeline",
            job_description="Build them.",
        )

    graph = declare().defs.resolve_asset_graph()
    assert graph.materializable_asset_keys == {AssetKey("connector_row_counts")}
    # Its inputs are the connector locations' assets, by key: lineage crosses locations.
    assert graph.get(AssetKey("connector_row_counts")).parent_keys == {
        AssetKey("staging_products"),
        AssetKey("staging_faker_users"),
    }
    # With no such model the location still loads, empty, instead of failing its code server.
    monkeypatch.setattr("dagster_code.lib.connector_location.shared_models", lambda _: [])
    assert not declare().defs.resolve_asset_graph().materializable_asset_keys
