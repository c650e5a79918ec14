"""The run launcher's version guard and the Dagster internals it relies on.

These fail when a Dagster release changes what `MonitoredRunLauncher` uses (with
test_dagster_internals.py, which runs the wrapped internals); the behaviour end to end (a
killed worker's run ends FAILURE) is tested on a real platform in
tests/reliability/test_run_worker_killed.py.
"""

from __future__ import annotations

import os

import pytest
import yaml

from dataplatform.runtime import dagster_internals, run_launcher
from pyairbyte import settings


def test_the_installed_dagster_is_the_supported_one():
    dagster_internals.check_dagster_version()  # raises on any other release


def test_another_dagster_release_is_refused_with_the_fix():
    with pytest.raises(dagster_internals.UnsupportedDagsterVersion, match="uv sync --frozen"):
        dagster_internals.check_dagster_version("1.14.0")


def test_dagster_internals_the_launcher_uses_are_unchanged():
    """The shapes it reads; the code-server tag and GetCurrentRuns are run in
    test_dagster_internals.py, run monitoring's use of the answer just below."""
    from dagster._core.events import DagsterEvent

    assert "pid" in DagsterEvent._fields
    assert {"RUNNING", "FAILED"} <= {s.name for s in dagster_internals.WorkerStatus}
    assert dagster_internals.CheckRunHealthResult._fields[:2] == ("status", "msg")


@pytest.mark.parametrize("worker", ["RUNNING", "FAILED"])
def test_run_monitoring_fails_a_run_only_when_the_launcher_says_its_worker_failed(worker, tmp_path):
    """Run monitoring asks this launcher about a STARTED run and ends it on FAILED only."""
    import logging
    import uuid

    from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
    from dagster._daemon.monitoring.run_monitoring import monitor_started_run

    overrides = {
        "run_launcher": {"module": "dataplatform.runtime.run_launcher",
                         "class": "MonitoredRunLauncher"},
        "run_monitoring": {"enabled": True, "max_resume_run_attempts": 0},
    }  # fmt: skip
    with DagsterInstance.local_temp(str(tmp_path), overrides=overrides) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, run_launcher.MonitoredRunLauncher)
        status = getattr(dagster_internals.WorkerStatus, worker)
        launcher.check_run_worker_health = lambda run: dagster_internals.CheckRunHealthResult(
            status, "the run worker is gone"
        )
        run = instance.add_run(DagsterRun(job_name="a_job", run_id=str(uuid.uuid4()),
                                          status=DagsterRunStatus.STARTED))  # fmt: skip
        record = instance.get_run_record_by_id(run.run_id)
        monitor_started_run(instance, None, record, logging.getLogger("test"))
        after = instance.get_run_by_id(run.run_id).status
    expected = DagsterRunStatus.FAILURE if worker == "FAILED" else DagsterRunStatus.STARTED
    assert after == expected


def test_platform_instance_uses_the_launcher_with_run_monitoring(tmp_path, monkeypatch):
    from dagster import DagsterInstance

    config = yaml.safe_load((settings.app_root() / "platform" / "dagster.yaml").read_text())
    # The instance's storages need PostgreSQL; only the launcher and monitoring matter here.
    keep = {k: config[k] for k in ("run_launcher", "run_monitoring", "telemetry")}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(keep))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert isinstance(instance.run_launcher, run_launcher.MonitoredRunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health
        assert instance.run_monitoring_enabled
        # FAILURE within 60 s of a worker's death needs a poll well under a minute.
        assert instance.run_monitoring_settings["poll_interval_seconds"] <= 20
        assert instance.run_monitoring_max_resume_run_attempts == 0
    finally:
        instance.dispose()
    assert os.environ["DAGSTER_HOME"] == str(tmp_path)
