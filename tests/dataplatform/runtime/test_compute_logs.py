"""Compute logs in PostgreSQL (dataplatform.runtime.compute_logs): what a run worker writes on one
host, a webserver with another DAGSTER_HOME reads, while the step runs and after it ends.

Every manager here connects to the session's real database; a "second host" is a second manager
or instance whose staging dir is empty, so anything it shows came from PostgreSQL.
"""

from __future__ import annotations

import inspect
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, execute_job, job, op, reconstructable
from dagster._core.storage.cloud_storage_compute_log_manager import (
    CloudStorageComputeLogManager,
    TruncatingCloudStorageComputeLogManager,
)
from dagster._core.storage.compute_log_manager import ComputeIOType
from dagster_postgres.utils import get_conn_string

from dataplatform.runtime import helm_values
from dataplatform.runtime.compute_logs import TABLE, PostgresComputeLogManager
from pyairbyte import settings

ROOT = settings.app_root()
MARKER = "compute-log-marker-7c1e"


@pytest.fixture
def url(pg):
    return get_conn_string(username=pg.user, password=pg.password or "", hostname=pg.host,
                           db_name=pg.db, port=str(pg.port))  # fmt: skip


@pytest.fixture
def manager(url, tmp_path):
    made = []

    def make(name: str, **kwargs) -> PostgresComputeLogManager:
        m = PostgresComputeLogManager(postgres_url=url, local_dir=str(tmp_path / name), **kwargs)
        made.append(m)
        return m

    yield make
    for m in made:
        m.dispose()


def _rows(pg_conn, key: str) -> dict[tuple[str, bool], bytes]:
    with pg_conn.cursor() as cur:
        cur.execute(f"select io_type, partial, data from {TABLE} where log_key = %s", (key,))
        return {(t, p): bytes(d) for t, p, d in cur.fetchall()}


# Dagster internals this module builds on (dagster is pinned; see run_launcher)


def test_the_base_classes_abstract_methods_are_the_ones_implemented():
    """A Dagster release that adds, drops or renames a hook fails here, before production."""
    assert set(TruncatingCloudStorageComputeLogManager.__abstractmethods__) == {
        "local_manager", "upload_interval", "delete_logs", "download_url_for_type",
        "display_path_for_type", "cloud_storage_has_logs", "_upload_file_obj",
    }  # fmt: skip
    assert not PostgresComputeLogManager.__abstractmethods__
    # Hooks with a default that the manager overrides, and the ones it relies on the base for.
    for name in ("upload_to_cloud_storage", "download_from_cloud_storage"):
        hook = getattr(CloudStorageComputeLogManager, name)
        assert list(inspect.signature(hook).parameters) == ["self", "log_key", "io_type", "partial"]
    for name in ("capture_logs", "get_log_data_for_type", "is_capture_complete", "on_progress",
                 "_on_capture_complete", "has_local_file"):  # fmt: skip
        assert callable(getattr(CloudStorageComputeLogManager, name))
    # upload_to_cloud_storage's override reads the set of truncated files the base keeps:
    # test_a_log_truncated_while_running_still_completes runs it. The version guard is tested in
    # test_dagster_internals.py.


# Unit level: two managers, two staging dirs, one database


def test_complete_logs_are_read_by_a_manager_with_an_empty_local_dir(manager, pg_conn, tmp_path):
    worker, webserver = manager("worker", upload_interval=None), manager("webserver")
    log_key = ["run-a", "compute_logs", "step_one"]
    with worker.capture_logs(log_key):
        print(f"{MARKER} out", flush=True)
        sys.stderr.write(f"{MARKER} err\n")
        sys.stderr.flush()

    rows = _rows(pg_conn, "run-a/compute_logs/step_one")
    assert set(rows) == {("stdout", False), ("stderr", False)}
    assert not list((tmp_path / "worker").rglob("*.out"))  # staged files deleted after upload
    assert not (tmp_path / "webserver").exists()

    assert webserver.is_capture_complete(log_key)
    data = webserver.get_log_data(log_key)
    assert f"{MARKER} out" in data.stdout.decode()
    assert f"{MARKER} err" in data.stderr.decode()
    assert webserver.get_log_metadata(log_key).stdout_download_url == (
        "/logs/run-a/compute_logs/step_one/out"
    )
    # The webserver's download route serves the local copy once fetched.
    assert webserver.has_local_file(log_key, ComputeIOType.STDOUT)
    assert webserver.get_log_keys_for_log_key_prefix(["run-a", "compute_logs"],
                                                     ComputeIOType.STDOUT) == [log_key]  # fmt: skip


def test_partial_logs_are_visible_while_the_step_runs(manager, pg_conn):
    worker, webserver = manager("worker", upload_interval=1), manager("webserver")
    log_key = ["run-b", "compute_logs", "long_step"]
    with worker.capture_logs(log_key):
        print(f"{MARKER} early", flush=True)
        deadline = time.monotonic() + 15
        while not webserver.cloud_storage_has_logs(log_key, ComputeIOType.STDOUT, partial=True):
            assert time.monotonic() < deadline, "no partial upload within 15 s"
            time.sleep(0.2)
        assert not webserver.is_capture_complete(log_key)
        assert f"{MARKER} early" in webserver.get_log_data(log_key).stdout.decode()
        print(f"{MARKER} late", flush=True)

    rows = _rows(pg_conn, "run-b/compute_logs/long_step")
    assert set(rows) == {("stdout", False), ("stderr", False)}  # the complete rows replace them
    assert webserver.is_capture_complete(log_key)
    stdout = webserver.get_log_data(log_key).stdout.decode()
    assert f"{MARKER} early" in stdout and f"{MARKER} late" in stdout


def test_a_log_truncated_while_running_still_completes(manager, pg_conn, monkeypatch):
    """The base class skips uploads after truncating; the truncated copy becomes the final one."""
    monkeypatch.setenv("DAGSTER_TRUNCATE_COMPUTE_LOGS_UPLOAD_BYTES", "16")
    worker, webserver = manager("worker", upload_interval=1), manager("webserver")
    log_key = ["run-c", "compute_logs", "noisy"]
    with worker.capture_logs(log_key):
        print("x" * 100, flush=True)
        deadline = time.monotonic() + 15
        while not webserver.cloud_storage_has_logs(log_key, ComputeIOType.STDOUT, partial=True):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    rows = _rows(pg_conn, "run-c/compute_logs/noisy")
    assert rows[("stdout", False)] == b"x" * 16 and ("stdout", True) not in rows
    assert webserver.is_capture_complete(log_key)


def test_delete_logs_by_key_and_by_prefix(manager, pg_conn):
    worker = manager("worker", upload_interval=None)
    for step in ("s1", "s2"):
        with worker.capture_logs(["run-d", "compute_logs", step]):
            print(step, flush=True)
    with worker.capture_logs(["run-d_other", "compute_logs", "s1"]):
        print("kept", flush=True)
    worker.delete_logs(log_key=["run-d", "compute_logs", "s1"])
    assert not _rows(pg_conn, "run-d/compute_logs/s1")
    worker.delete_logs(prefix=["run-d"])
    assert not _rows(pg_conn, "run-d/compute_logs/s2")
    assert _rows(pg_conn, "run-d_other/compute_logs/s1")  # `_` is no wildcard, `run-d` no prefix


def test_config_takes_the_storages_postgres_db_block_and_reads_env_at_load(pg, tmp_path):
    config = yaml.safe_load((ROOT / "platform" / "dagster.yaml").read_text())["compute_logs"]
    assert (config["module"], config["class"]) == (
        "dataplatform.runtime.compute_logs",
        "PostgresComputeLogManager",
    )
    db = config["config"]["postgres_db"]
    assert db["password"] == {"env": "POSTGRES_PASSWORD"}  # never a literal in the file
    assert {v["env"] for v in db.values()} == {
        "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"
    }  # fmt: skip


# A real run: the step's stdout lands in the table, and another DAGSTER_HOME reads it


@op
def shout() -> None:
    print(f"{MARKER} from the step", flush=True)


@job
def shouting_job():
    shout()


def _home(tmp_path: Path, name: str, dagster_yaml: str | None = None) -> Path:
    home = tmp_path / name
    home.mkdir()
    if dagster_yaml is None:
        shutil.copy(ROOT / "platform" / "dagster.yaml", home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(dagster_yaml)
    return home


def test_a_runs_step_output_is_readable_from_another_dagster_home(pg, pg_conn, tmp_path):
    worker_home, webserver_home = _home(tmp_path, "worker"), _home(tmp_path, "webserver")
    with DagsterInstance.from_config(str(worker_home)) as instance:
        assert isinstance(instance.compute_log_manager, PostgresComputeLogManager)
        # The multiprocess executor runs the step in a child process that loads the instance
        # from its ref, as a run worker does.
        with execute_job(reconstructable(shouting_job), instance=instance) as result:
            assert result.success
            run_id = result.run_id
        captured = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.LOGS_CAPTURED
        ).records
        file_keys = {r.event_log_entry.dagster_event.event_specific_data.file_key for r in captured}
    assert len(file_keys) == 1
    log_key = [run_id, "compute_logs", file_keys.pop()]
    assert MARKER.encode() in _rows(pg_conn, "/".join(log_key))[("stdout", False)]
    assert not list((worker_home / "storage").rglob("*.out"))

    with DagsterInstance.from_config(str(webserver_home)) as other:
        manager = other.compute_log_manager
        assert manager.is_capture_complete(log_key)
        assert f"{MARKER} from the step" in manager.get_log_data(log_key).stdout.decode()
        assert (webserver_home / "storage" / run_id).is_dir()  # fetched into its own staging dir


# Kubernetes: the chart's computeLogManager, from platform/dagster.yaml


def test_helm_values_carry_the_compute_log_manager_without_the_cache_env():
    instance = yaml.safe_load((ROOT / "platform" / "dagster.yaml").read_text())
    values = yaml.safe_load((ROOT / helm_values.VALUES_FILE).read_text())
    custom = values["computeLogManager"]["config"]["customComputeLogManager"]
    assert values["computeLogManager"]["type"] == "CustomComputeLogManager"
    assert (custom["module"], custom["class"]) == (
        instance["compute_logs"]["module"],
        instance["compute_logs"]["class"],
    )
    expected = {k: v for k, v in instance["compute_logs"]["config"].items() if k != "postgres_db"}
    assert custom["config"] == expected


def test_the_charts_rendering_uses_the_instance_storage_database(pg, pg_conn, tmp_path):
    """As the chart renders dagster.yaml: storages from its postgresql values, compute_logs with
    the values' config verbatim. The manager then writes to the storages' database."""
    values = yaml.safe_load((ROOT / helm_values.VALUES_FILE).read_text())
    custom = values["computeLogManager"]["config"]["customComputeLogManager"]
    db = {"hostname": pg.host, "port": int(pg.port), "username": pg.user, "db_name": pg.db,
          "password": {"env": "POSTGRES_PASSWORD"}}  # fmt: skip
    storage = {"postgres_db": db}
    rendered = {
        "storage": {"postgres": storage},
        "compute_logs": {k: custom[k] for k in ("module", "class", "config")},
    }
    home = _home(tmp_path, "chart", yaml.safe_dump(rendered))
    with DagsterInstance.from_config(str(home)) as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, PostgresComputeLogManager)
        log_key = ["run-k8s", "compute_logs", "step"]
        with manager.capture_logs(log_key):
            print(MARKER, flush=True)
    assert MARKER.encode() in _rows(pg_conn, "run-k8s/compute_logs/step")[("stdout", False)]
