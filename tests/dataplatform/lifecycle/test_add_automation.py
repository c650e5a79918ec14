"""`dataplatform connector add` with `schedule:`, `freshness:` and `retry:` in the connector YAML:
the generated location loads them (schedule STOPPED, freshness checks and their sensor, a retry
policy on the sync), the generated dbt sources carry source freshness, and a bad value is
refused with the file and the field before anything is written."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.dataplatform.lifecycle.conftest import CONNECTOR_YAML, make_copy

LOCATION = "timed_orders"
AUTOMATION = """
schedule:
  cron: "0 5 * * *"
  timezone: Europe/Stockholm
freshness:
  max_lag: 30h
retry:
  attempts: 4
  delay: 15s
"""

LOAD = """
import json
from dagster import Definitions
from dagster._core.definitions.dependency import NodeHandle
from dagster_code.timed_orders import defs
Definitions.validate_loadable(defs)
repository = defs.get_repository_def()
job = defs.resolve_job_def("timed_orders_pipeline")
policy = job.get_retry_policy_for_handle(NodeHandle("sync_timed_orders", None))
print(json.dumps({
    "schedules": [
        [s.name, s.cron_schedule, s.execution_timezone, s.default_status.value]
        for s in repository.schedule_defs
    ],
    "sensors": [[s.name, s.default_status.value] for s in repository.sensor_defs],
    "checks": sorted(
        k.asset_key.to_user_string() + ":" + k.name
        for k in defs.resolve_asset_graph().asset_check_keys if k.name == "freshness_check"
    ),
    "retry": [policy.max_retries, policy.delay, policy.backoff.value],
}))
"""


def _yaml_with(tmp_path, automation: str):
    """The lifecycle tests' connector YAML with automation, beside a copy of its manifest."""
    directory = tmp_path / "connector"
    (directory / "manifests").mkdir(parents=True)
    for manifest in (CONNECTOR_YAML.parent / "manifests").iterdir():
        (directory / "manifests" / manifest.name).write_bytes(manifest.read_bytes())
    path = directory / CONNECTOR_YAML.name
    path.write_text(CONNECTOR_YAML.read_text() + automation)
    return path


@pytest.fixture(scope="module")
def added(pg, orders_api, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("automation")
    copy = make_copy(tmp / "repo")
    connector_yaml = _yaml_with(tmp, AUTOMATION)
    copy.result = copy.cli("connector", "add", LOCATION, "--connector-yaml", str(connector_yaml))
    assert copy.result.returncode == 0, copy.result.stdout + copy.result.stderr
    return copy


def test_the_generated_location_loads_the_yamls_automation(added):
    out = added.python(LOAD)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["schedules"] == [
        ["timed_orders_pipeline_schedule", "0 5 * * *", "Europe/Stockholm", "STOPPED"]
    ]
    assert loaded["sensors"] == [["timed_orders_freshness_checks", "STOPPED"]]
    assert loaded["checks"] == [
        "pyairbyte_cache/customers:freshness_check",
        "pyairbyte_cache/orders:freshness_check",
    ]
    assert loaded["retry"] == [3, 15.0, "EXPONENTIAL"]


def test_the_generated_dbt_sources_have_freshness_on_extracted_at(added):
    path = added.root / "dbt_models" / "models" / f"{LOCATION}_sources.yml"
    (source,) = yaml.safe_load(path.read_text())["sources"]
    assert source["config"] == {
        "loaded_at_field": "_airbyte_extracted_at",
        "freshness": {"error_after": {"count": 30, "period": "hour"}},
    }
    # The copied connector YAML is the one place the automation is written.
    copied = added.root / "data-manager" / "external-connectors" / CONNECTOR_YAML.name
    assert yaml.safe_load(copied.read_text())["schedule"]["cron"] == "0 5 * * *"
    declaration = (added.root / "dagster_code" / LOCATION / "location.py").read_text()
    assert "0 5 * * *" not in declaration and "30h" not in declaration


def test_add_refuses_a_bad_schedule_naming_file_and_field(repo_copy, tmp_path):
    connector_yaml = _yaml_with(tmp_path, 'schedule:\n  cron: "0 6 * * *"\n  status: paused\n')
    before = repo_copy.tree_hash()
    out = repo_copy.cli("connector", "add", LOCATION, "--connector-yaml", str(connector_yaml))
    assert out.returncode == 1, out.stdout + out.stderr
    assert (
        f"{connector_yaml}: field 'schedule.status': expected running or stopped, got 'paused'. "
        "Fix: write `status: running`, or leave it out to start schedule stopped"
    ) in out.stderr
    assert repo_copy.tree_hash() == before
