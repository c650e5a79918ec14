"""When `connector add`/`remove` tell a running dagster-init, and when they must not."""

from __future__ import annotations

import json
import os

from dataplatform.lifecycle.live import apply_live, running_supervisor
from dataplatform.runtime import paths, processes


def _platform(tmp_path, monkeypatch, status: dict | None):
    monkeypatch.setenv("DATAPLATFORM_PLATFORM_DIR", str(tmp_path / "platform"))
    if status is not None:
        # This very process stands in for dagster-init: a live pid with a status file.
        processes.write_pid_file(paths.run_dir() / "dagster-init.pid", os.getpid())
        paths.supervisor_status_file().write_text(json.dumps(status))


def test_no_platform_running_means_nothing_to_tell(tmp_path, monkeypatch):
    _platform(tmp_path, monkeypatch, None)
    assert running_supervisor() is None
    assert apply_live(["x"], []) is None


def test_an_older_dagster_init_is_never_signalled(tmp_path, monkeypatch):
    # Without a `reconcile` entry it has no SIGUSR1 handler, and the signal would end it.
    _platform(tmp_path, monkeypatch, {"supervisor_pid": os.getpid(), "locations": {}})
    assert running_supervisor() is None
    assert apply_live(["x"], []) is None


def test_a_status_of_another_process_is_not_trusted(tmp_path, monkeypatch):
    _platform(tmp_path, monkeypatch, {"supervisor_pid": 1, "reconcile": None})
    assert running_supervisor() is None


def test_a_reconciling_dagster_init_is_found(tmp_path, monkeypatch):
    _platform(tmp_path, monkeypatch, {"supervisor_pid": os.getpid(), "reconcile": None})
    assert running_supervisor() == os.getpid()
