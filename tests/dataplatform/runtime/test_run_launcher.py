"""The run launcher's version guard and the Dagster internals it relies on.

These fail when a Dagster release changes what `MonitoredRunLauncher` uses; the behaviour
itself (a killed worker's run ends FAILURE) is tested on a real platform in
tests/reliability/test_run_worker_killed.py.
"""

from __future__ import annotations

import inspect
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
    from dagster import DefaultRunLauncher
    from dagster._core.events import DagsterEvent
    from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
    from dagster._core.storage.tags import GRPC_INFO_TAG
    from dagster._daemon.monitoring import run_monitoring
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._grpc.types import GetCurrentRunsResult

    # The launcher records the code server's address in this tag and reads it back.
    assert "GRPC_INFO_TAG" in inspect.getsource(DefaultRunLauncher.launch_run_from_grpc_client)
    assert GRPC_INFO_TAG == ".dagster/grpc_info"
    helper = inspect.signature(DefaultRunLauncher._get_grpc_client_for_termination)
    assert list(helper.parameters) == ["self", "run_id"]
    assert "GetCurrentRuns" in inspect.getsource(DagsterGrpcClient.get_current_runs)
    assert "current_runs" in GetCurrentRunsResult.__annotations__
    assert "pid" in DagsterEvent._fields
    assert {"RUNNING", "FAILED"} <= {s.name for s in WorkerStatus}
    assert CheckRunHealthResult._fields[:2] == ("status", "msg")
    # Run monitoring asks the launcher, and fails the run on anything but RUNNING/SUCCESS.
    monitor = inspect.getsource(run_monitoring.monitor_started_run)
    assert "supports_check_run_worker_health" in monitor
    assert "WorkerStatus.RUNNING, WorkerStatus.SUCCESS" in monitor


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
