"""The connector YAML's automation in real definitions and real runs: schedules and their status,
a transient source error retried until the source recovers, a 401 failed at once, freshness
check results, and dbt source freshness on the synced table."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    materialize,
)
from dagster._core.test_utils import freeze_time
from dagster._time import get_current_datetime

from dagster_code.lib.connector_location import ConnectorLocation
from pyairbyte import settings
from pyairbyte.utils.connector_config import ConnectorConfigError
from tests.helpers import scalar, step_failure_messages

PRODUCTS = AssetKey(["pyairbyte_cache", "products"])
SAMPLE_YAML = settings.app_root() / "data-manager" / "external-connectors" / "sample-connector.yaml"


def test_the_sample_locations_schedules_are_loaded_stopped():
    from dagster_code.airbyte_sync import defs as faker_defs
    from dagster_code.sample_product_sync import defs as sample_defs

    for defs, job, cron in (
        (sample_defs, "sample_product_sync_pipeline", "0 6 * * *"),
        (faker_defs, "airbyte_sync_pipeline", "0 */6 * * *"),
    ):
        (schedule,) = defs.get_repository_def().schedule_defs
        assert (schedule.name, schedule.job_name, schedule.cron_schedule) == (
            f"{job}_schedule",
            job,
            cron,
        )
        assert schedule.execution_timezone == "UTC"
        assert schedule.default_status == DefaultScheduleStatus.STOPPED
        (sensor,) = defs.get_repository_def().sensor_defs
        assert sensor.default_status == DefaultSensorStatus.STOPPED


@pytest.fixture
def connector_yaml(tmp_path, monkeypatch):
    """A copy of sample-connector.yaml (and its manifest) in a connectors directory of its own;
    the test appends automation to it."""
    directory = tmp_path / "connectors"
    shutil.copytree(SAMPLE_YAML.parent / "manifests", directory / "manifests")
    path = directory / SAMPLE_YAML.name
    text = SAMPLE_YAML.read_text()
    path.write_text(text[: text.index("# Automation")])  # the sample's own automation removed
    monkeypatch.setenv("CONNECTORS_DIR", str(directory))

    def write(automation: str) -> ConnectorLocation:
        path.write_text(path.read_text() + automation)
        return ConnectorLocation(
            name="automated",
            connector="sample-connector",
            streams=["products"],
            dbt_source="sample_connector",
            sync_asset_name="sync_automated",
            transform_asset_name="transform_automated",
            job_name="automated_pipeline",
            sync_description="Sync products.",
            transform_description="Build products.",
            job_description="Sync, then build.",
        )

    write.path = path
    return write


def test_status_running_starts_the_schedule_and_the_freshness_sensor(connector_yaml):
    location = connector_yaml(
        "schedule:\n  cron: '15 7 * * 1-5'\n  timezone: Europe/Stockholm\n  status: running\n"
        "freshness:\n  max_lag: 2h\n  status: running\n"
    )
    repository = location.defs.get_repository_def()
    (schedule,) = repository.schedule_defs
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert (schedule.cron_schedule, schedule.execution_timezone) == (
        "15 7 * * 1-5",
        "Europe/Stockholm",
    )
    (sensor,) = repository.sensor_defs
    assert (sensor.name, sensor.default_status) == (
        "automated_freshness_checks",
        DefaultSensorStatus.RUNNING,
    )


def test_a_bad_schedule_stops_the_location_load_naming_file_and_field(connector_yaml):
    location = connector_yaml("schedule:\n  cron: '0 6 * *'\n")
    with pytest.raises(ConnectorConfigError) as info:
        location.defs  # noqa: B018 (loading the definitions is the act under test)
    assert str(info.value).startswith(
        f"{connector_yaml.path}: field 'schedule.cron': '0 6 * *' has 4 fields, not 5. Fix:"
    )


def _retries(result) -> list:
    return [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]


def test_a_transient_error_is_retried_until_the_source_recovers(
    connector_yaml, pg, pg_conn, sample_api
):
    location = connector_yaml("retry:\n  attempts: 3\n  delay: 0.2\n  backoff: constant\n")
    # Each try's check makes 3 requests (the manifest's own 2 retries); two tries fail.
    sample_api.fail_with_status, sample_api.fail_times = 503, 6

    with DagsterInstance.ephemeral() as instance:
        result = materialize([location.sync_asset], instance=instance)

    assert result.success
    assert len(_retries(result)) == 2
    assert sample_api.fail_times == 0
    assert scalar(pg_conn, "select count(*) from pyairbyte_cache.products") == 30


def test_a_transient_error_past_the_attempts_fails_after_them(connector_yaml, pg, sample_api):
    location = connector_yaml("retry:\n  attempts: 2\n  delay: 0.2\n")
    sample_api.fail_with_status = 500  # never recovers

    with DagsterInstance.ephemeral() as instance:
        result = materialize([location.sync_asset], instance=instance, raise_on_error=False)

    assert not result.success
    assert len(_retries(result)) == 1
    assert "HTTP Status Code: 500" in "\n".join(step_failure_messages(result))


def test_a_non_transient_error_fails_at_once(connector_yaml, pg, sample_api, monkeypatch):
    location = connector_yaml("retry:\n  attempts: 3\n  delay: 0.2\n")
    sample_api.api_key = "the-right-key"
    monkeypatch.setenv("SAMPLE_API_KEY", "a-wrong-key")  # the API answers 401

    with DagsterInstance.ephemeral() as instance:
        result = materialize([location.sync_asset], instance=instance, raise_on_error=False)

    assert not result.success
    assert _retries(result) == []
    assert len(sample_api.requests) == 1  # one try, one request: nothing retried it
    (failure,) = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    assert failure.user_failure_data.metadata["transient"].value is False


def _freshness_passed(result) -> list[bool]:
    return [e.passed for e in result.get_asset_check_evaluations()]


def test_freshness_checks_pass_after_a_sync_and_fail_once_it_is_older_than_max_lag(
    connector_yaml, pg, sample_api
):
    location = connector_yaml("freshness:\n  max_lag: 2h\n")
    (checks,) = location.freshness_checks
    assert {key.asset_key for key in checks.check_keys} == {PRODUCTS}

    with DagsterInstance.ephemeral() as instance:
        synced = materialize([location.sync_asset, checks], instance=instance)
        assert _freshness_passed(synced) == [True]  # the check runs right after the sync

        only_check = AssetSelection.checks(checks)
        with freeze_time(get_current_datetime() + timedelta(hours=1)):
            fresh = materialize(
                [location.sync_asset, checks], instance=instance, selection=only_check
            )
        with freeze_time(get_current_datetime() + timedelta(hours=3)):
            overdue = materialize(
                [location.sync_asset, checks], instance=instance, selection=only_check
            )

    assert _freshness_passed(fresh) == [True]
    (evaluation,) = overdue.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.description == (
        "Asset is overdue for an update. The last update was 3 hours ago, which is past the "
        "allowed distance of 2 hours ago."
    )
    assert evaluation.severity == AssetCheckSeverity.WARN  # Dagster's default: it warns


def _dbt_source_freshness(target) -> subprocess.CompletedProcess:
    from dataplatform.dbt import settings as dbt_settings
    from dataplatform.dbt.manifest import dbt_executable

    return subprocess.run(
        [dbt_executable(), "source", "freshness", "--select", "source:sample_connector"],
        cwd=dbt_settings.project_dir(),
        env={
            **os.environ,
            "DBT_PROFILES_DIR": str(dbt_settings.profiles_dir()),
            "DBT_TARGET_PATH": str(target),  # not the project's own target/
            "DBT_LOG_PATH": str(target),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dbt_source_freshness_reads_the_extracted_at_of_a_synced_table(
    pg, pg_conn, sample_api, tmp_path
):
    from dagster_code.sample_product_sync.location import location

    with DagsterInstance.ephemeral() as instance:
        assert materialize([location.sync_asset], instance=instance).success

    out = _dbt_source_freshness(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PASS freshness of sample_connector.products" in out.stdout

    # The sample's max_lag is 26h: rows extracted 27 hours ago are stale.
    with pg_conn.cursor() as cur:
        cur.execute(
            "update pyairbyte_cache.products set _airbyte_extracted_at = now() - interval '27h'"
        )
    out = _dbt_source_freshness(tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "ERROR STALE freshness of sample_connector.products" in out.stdout
