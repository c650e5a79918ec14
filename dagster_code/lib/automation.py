"""The connector YAML's automation as Dagster definitions: a schedule, freshness checks, a retry.

`pyairbyte.utils.connector_automation` parses and validates the YAML's `schedule:`,
`freshness:` and `retry:`; this module only maps them onto Dagster, the way dagster-airbyte,
dagster-dbt and dagster-sling leave scheduling to plain Dagster objects:
- `schedule:` -> a `ScheduleDefinition` of the location's pipeline job, `<job>_schedule`, in
  the YAML's time zone. It starts STOPPED unless the YAML says `status: running`: a schedule
  that appears on a deploy should not start syncing a source before someone turns it on.
- `freshness:` -> Dagster's last-update freshness checks on every sync asset (a cache table is
  overdue when its newest materialization is older than `max_lag`), and the sensor that
  evaluates them between runs, `<location>_freshness_checks`, STOPPED unless `status: running`.
  The pipeline job runs the checks too, right after its sync.
- `retry:` -> a `RetryPolicy` on the sync step. Only transient errors reach it: the sync raises
  `Failure(allow_retries=False)` for the others (lib/sync.py), so a 401 or a bad YAML fails at
  once while an HTTP 503 or a reset connection is retried.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from dagster import (
    AssetChecksDefinition,
    AssetsDefinition,
    Backoff,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RetryPolicy,
    ScheduleDefinition,
    SensorDefinition,
    SupersessionWarning,
    build_last_update_freshness_checks,
    build_sensor_for_freshness_checks,
)

from pyairbyte.utils.connector_automation import (
    FreshnessSettings,
    RetrySettings,
    ScheduleSettings,
)

if TYPE_CHECKING:
    # What define_asset_job returns; dagster does not export the type.
    from dataplatform.runtime.dagster_internals import UnresolvedAssetJobDefinition

_BACKOFF = {"exponential": Backoff.EXPONENTIAL, "linear": Backoff.LINEAR, "constant": None}
# How often the freshness sensor looks; a check only runs when its result could have changed.
FRESHNESS_SENSOR_SECONDS = 300


def schedule_name(job_name: str) -> str:
    return f"{job_name}_schedule"


def job_schedules(
    job: UnresolvedAssetJobDefinition, settings: ScheduleSettings | None
) -> list[ScheduleDefinition]:
    if settings is None:
        return []
    status = DefaultScheduleStatus.RUNNING if settings.running else DefaultScheduleStatus.STOPPED
    return [
        ScheduleDefinition(
            name=schedule_name(job.name),
            cron_schedule=settings.cron,
            execution_timezone=settings.timezone,
            job=job,
            default_status=status,
            description=f"Runs {job.name} at {settings.cron} ({settings.timezone}); set by "
            "`schedule:` in the connector YAML.",
        )
    ]


def freshness_checks(
    location: str, assets: AssetsDefinition, settings: FreshnessSettings | None
) -> tuple[list[AssetChecksDefinition], list[SensorDefinition]]:
    """Freshness checks on `assets` and their sensor, or none without `freshness:`."""
    if settings is None:
        return [], []
    # Dagster 1.13 marks these factories superseded by FreshnessPolicy, which only the daemon
    # evaluates. Checks are what the issue asks for: each pipeline run records a pass or fail on
    # the cache table, and the sensor re-checks between runs. The warning would be logged by
    # every code server on every load, so it is silenced here and nowhere else.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        checks = list(
            build_last_update_freshness_checks(assets=[assets], lower_bound_delta=settings.max_lag)
        )
        status = DefaultSensorStatus.RUNNING if settings.running else DefaultSensorStatus.STOPPED
        sensor = build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name=f"{location}_freshness_checks",
            minimum_interval_seconds=FRESHNESS_SENSOR_SECONDS,
            default_status=status,
        )
    return checks, [sensor]


def sync_retry_policy(settings: RetrySettings | None) -> RetryPolicy | None:
    if settings is None or settings.max_retries == 0:
        return None
    return RetryPolicy(
        max_retries=settings.max_retries,
        delay=settings.delay_seconds,
        backoff=_BACKOFF[settings.backoff],
    )
