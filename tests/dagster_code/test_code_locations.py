"""Each code location loads, with exactly the asset keys, checks and jobs the platform promises."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from pyairbyte import settings

EXPECTED = {
    "dbt_poc": {
        "assets": {
            "dbt_poc/staging_faker_users",
            "dbt_poc/faker_users_reporting",
            "dbt_poc/staging_products",
            "dbt_poc/products_reporting",
        },
        # dbt sources point at the sync assets of the other locations (lineage across locations).
        "external": {"sync_faker_users", "sync_sample_connector"},
        "jobs": {"dbt_poc_pipeline"},
    },
    "airbyte_sync": {
        "assets": {"sync_faker_users", "staging_faker_users", "faker_users_reporting"},
        "external": set(),
        "jobs": {"airbyte_sync_pipeline"},
    },
    "sample_product_sync": {
        "assets": {"sync_sample_connector", "transform_sample_product_data"},
        "external": set(),
        "jobs": {"sample_product_sync_pipeline"},
    },
}


@pytest.mark.parametrize("location", sorted(EXPECTED))
def test_defs_load_with_expected_assets_and_jobs(location):
    defs = importlib.import_module(f"dagster_code.{location}").defs
    graph = defs.resolve_asset_graph()
    materializable = {k.to_user_string() for k in graph.materializable_asset_keys}
    external = {k.to_user_string() for k in graph.get_all_asset_keys()} - materializable
    jobs = {j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")}
    assert materializable == EXPECTED[location]["assets"]
    assert external == EXPECTED[location]["external"]
    assert jobs == EXPECTED[location]["jobs"]


def test_dbt_lineage_runs_from_sync_to_reporting():
    from dagster import AssetKey

    from dagster_code.airbyte_sync import defs

    graph = defs.resolve_asset_graph()
    assert graph.get(AssetKey("staging_faker_users")).parent_keys == {AssetKey("sync_faker_users")}
    assert graph.get(AssetKey("faker_users_reporting")).parent_keys == {
        AssetKey("staging_faker_users")
    }


def test_pipeline_jobs_carry_the_connector_concurrency_tag():
    from dagster_code.airbyte_sync import defs as faker_defs
    from dagster_code.sample_product_sync import defs as product_defs

    assert faker_defs.resolve_job_def("airbyte_sync_pipeline").tags == {
        "dataplatform/connector": "source-faker"
    }
    assert product_defs.resolve_job_def("sample_product_sync_pipeline").tags == {
        "dataplatform/connector": "sample-connector"
    }


def test_code_locations_json_lists_the_three_locations():
    entries = json.loads(settings.code_locations_file().read_text())["code_locations"]
    by_name = {e["name"]: (e["module"], e["port"]) for e in entries if e["enabled"]}
    assert by_name["dbt_poc"] == ("dagster_code.dbt_poc", 4266)
    assert by_name["airbyte_sync"] == ("dagster_code.airbyte_sync", 4267)
    assert by_name["sample_product_sync"] == ("dagster_code.sample_product_sync", 4268)


@pytest.mark.parametrize("location", sorted(EXPECTED))
def test_loading_a_location_does_not_import_airbyte_or_pandas(location):
    """Code servers are long-running: airbyte (8-15 s, ~320 MB) and pandas load only in runs."""
    code = (
        f"import sys, dagster_code.{location}; "
        "print(sorted(m for m in ('airbyte', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"
