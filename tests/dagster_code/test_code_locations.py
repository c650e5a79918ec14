"""The connector locations and dbt_poc: what code-locations.json says about them, and what loading
one costs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from pyairbyte import settings

# Their asset graphs (keys, checks, lineage, groups, kinds, jobs, tags) are held by the snapshots
# in snapshots/, see test_asset_graph_snapshots.py.
DECLARED = ["airbyte_sync", "dbt_poc", "sample_product_sync"]
CONNECTOR_LOCATIONS = ["airbyte_sync", "sample_product_sync"]


def test_code_locations_json_lists_the_three_locations():
    entries = json.loads(settings.code_locations_file().read_text())["code_locations"]
    by_name = {e["name"]: (e["module"], e["port"]) for e in entries if e["enabled"]}
    assert by_name["dbt_poc"] == ("dagster_code.dbt_poc", 4266)
    assert by_name["airbyte_sync"] == ("dagster_code.airbyte_sync", 4267)
    assert by_name["sample_product_sync"] == ("dagster_code.sample_product_sync", 4268)


@pytest.mark.parametrize("location", CONNECTOR_LOCATIONS)
def test_code_locations_json_records_what_the_location_declares(location):
    """`connector remove` and the doctor read the connector and the dbt source from the entry,
    so it must agree with the location's declaration."""
    declared = importlib.import_module(f"dagster_code.{location}.location").location
    entries = json.loads(settings.code_locations_file().read_text())["code_locations"]
    (entry,) = [e for e in entries if e["name"] == location]
    assert entry["metadata"]["connector"] == declared.connector
    assert entry["metadata"]["dbt_source"] == declared.dbt_source


@pytest.mark.parametrize("location", DECLARED)
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
