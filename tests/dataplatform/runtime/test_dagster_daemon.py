"""The daemon wrapper refreshes its workspace when the file changes, through Dagster's own check.

It patches `DagsterDaemonController.check_workspace_freshness` (dagster 1.13 internals, through
dataplatform.runtime.dagster_internals); these tests fail when that method or the constants it
relies on change.
"""

from __future__ import annotations

import inspect
import json

from dagster._daemon import controller

from dataplatform.runtime import dagster_daemon


class FakeWorkspace:
    def __init__(self):
        self.refreshes = 0
        self.code_location_entries = {}

    def refresh_workspace(self):
        self.refreshes += 1

    def get_current_workspace(self):
        return self


class FakeController:
    """The attributes the stock check reads: no gRPC registry, one workspace context."""

    def __init__(self):
        self._grpc_server_registry = None
        self._workspace_process_context = FakeWorkspace()
        self._logger = None


def test_the_internals_it_patches_are_there():
    params = inspect.signature(controller.DagsterDaemonController.check_workspace_freshness)
    assert list(params.parameters) == ["self", "last_workspace_update_time"]
    assert controller.RELOAD_WORKSPACE_INTERVAL == 60
    assert controller.THREAD_CHECK_INTERVAL == 5
    # That the daemon's loop runs the check every THREAD_CHECK_INTERVAL is proved by running it:
    # test_dagster_internals.py::test_the_daemon_loop_runs_the_wrapped_check_at_the_interval.


def test_refreshes_when_the_file_changes_and_reports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAPLATFORM_PLATFORM_DIR", str(tmp_path / "platform"))
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("load_from: []\n")
    original = controller.DagsterDaemonController.check_workspace_freshness
    interval = controller.THREAD_CHECK_INTERVAL
    try:
        dagster_daemon.install_workspace_watch([workspace])
        assert controller.THREAD_CHECK_INTERVAL == dagster_daemon.CHECK_INTERVAL
        fake = FakeController()
        check = controller.DagsterDaemonController.check_workspace_freshness
        now = controller.get_current_timestamp()

        assert check(fake, now) == now  # unchanged and fresh: no refresh, first report
        assert fake._workspace_process_context.refreshes == 0
        report = json.loads(dagster_daemon.report_file().read_text())
        assert report["workspace_sha256"] == dagster_daemon.workspace_digest([workspace])

        workspace.write_text("load_from: [{grpc_server: {host: h, port: 1}}]\n")
        fake._workspace_process_context.code_location_entries = {"new": type("E", (), {
            "load_error": None})()}  # fmt: skip
        assert check(fake, now) > 0
        assert fake._workspace_process_context.refreshes == 1
        report = json.loads(dagster_daemon.report_file().read_text())
        assert report["workspace_sha256"] == dagster_daemon.workspace_digest([workspace])
        assert report["locations"] == {"new": "loaded"}
    finally:
        controller.DagsterDaemonController.check_workspace_freshness = original
        controller.THREAD_CHECK_INTERVAL = interval


def test_workspace_files_come_from_the_command_line():
    argv = ["run", "-w", "a.yaml", "--workspace", "b.yaml", "--workspace=c.yaml"]
    assert [str(p) for p in dagster_daemon.workspace_files(argv)] == ["a.yaml", "b.yaml", "c.yaml"]
