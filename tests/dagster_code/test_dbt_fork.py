"""dbt forked from a warm run worker builds exactly what dagster-dbt's dbt subprocess builds.

The sample pipeline runs in-process against real PostgreSQL, PyAirbyte and dbt, once with dbt
forked (dbt's entry point imported first, as the fork server pre-loads it) and once with the
stock subprocess; the models, the asset checks and a failing test's error are compared.
"""

from __future__ import annotations

import inspect
import io
import signal

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from dagster_code.lib import dbt_fork
from tests.helpers import step_failure_messages


@pytest.fixture
def forks(monkeypatch):
    """The dbt commands that ran as forks."""
    import dbt.cli.main  # noqa: F401 - pre-loaded by the fork server in a warm run worker

    seen: list[list[str]] = []
    original = dbt_fork.ForkedDbt.__init__

    def record(self, args, env, cwd):
        seen.append(list(args))
        original(self, args, env, cwd)

    monkeypatch.setattr(dbt_fork.ForkedDbt, "__init__", record)
    return seen


def test_dagster_dbt_internals_the_fork_uses_are_unchanged():
    """The signature the override repeats and the field it fills. That DbtCliResource.cli calls
    the module-level DbtCliInvocation.run is proved by running: the forked build below records
    its fork and matches the subprocess's result."""
    from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

    assert list(inspect.signature(DbtCliInvocation.run).parameters) == [
        "args", "env", "manifest", "dagster_dbt_translator", "project_dir", "target_path",
        "raise_on_error", "context", "adapter", "cli_version", "dbt_project",
    ]  # fmt: skip
    assert "process" in DbtCliInvocation.__dataclass_fields__


class _RecordedProcess:
    """A finished dbt process that records which attributes dagster-dbt reads from it."""

    def __init__(self, interrupted: bool):
        self.used: set[str] = set()
        self._interrupted = interrupted
        self._sent: list[int] = []

    def __getattr__(self, name):
        self.used.add(name)
        values = {"args": ["dbt", "build"], "returncode": 0, "pid": 1, "poll": lambda: 0,
                  "wait": lambda timeout=None: 0, "send_signal": self._sent.append}  # fmt: skip
        if name == "stdout":
            return self._interrupting_stdout() if self._interrupted else io.BytesIO(b"")
        return values[name]

    def _interrupting_stdout(self):
        from dagster._core.errors import DagsterExecutionInterruptedError

        class Interrupting(io.BytesIO):
            def __iter__(self):
                raise DagsterExecutionInterruptedError()

        return Interrupting(b"")


@pytest.mark.parametrize("interrupted", [False, True])
def test_dagster_dbt_uses_only_what_a_forked_dbt_has(interrupted, tmp_path):
    """Reading a finished command, and forwarding an interrupt (SIGINT, then a wait), dagster-dbt
    touches only attributes ForkedDbt provides."""
    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster_dbt import DagsterDbtTranslator
    from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

    process = _RecordedProcess(interrupted)
    invocation = DbtCliInvocation(
        process=process, manifest={}, dagster_dbt_translator=DagsterDbtTranslator(),
        project_dir=tmp_path, target_path=tmp_path, raise_on_error=False, cli_version="1",
    )  # fmt: skip
    if interrupted:
        with pytest.raises(DagsterExecutionInterruptedError):
            list(invocation.stream_raw_events())
        assert process._sent == [signal.SIGINT]
    else:
        assert invocation.is_successful()
    forked_dbt_has = {"args", "returncode", "pid", "stdout", "poll", "wait", "send_signal"}
    assert process.used and process.used <= forked_dbt_has, process.used
    assert all(hasattr(dbt_fork.ForkedDbt, n) for n in ("poll", "wait", "send_signal"))


def _transform(location):
    return materialize(
        [location.sync_asset, location.transform_asset],
        selection=[location.transform_asset],
        instance=DagsterInstance.ephemeral(),
        resources={"dbt": location.defs.resources["dbt"]},
        raise_on_error=False,
    )


def _outcome(result) -> tuple[set[str], dict[str, bool]]:
    materialized = {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }
    checks = {
        f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:"
        f"{e.asset_check_evaluation_data.check_name}": e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    return materialized, checks


def test_forked_dbt_builds_what_the_subprocess_builds(pg, pg_conn, sample_api, forks, monkeypatch):
    from dagster_code.sample_product_sync.location import location

    monkeypatch.setenv("DATAPLATFORM_DBT_FORK", "false")
    synced = materialize(
        [location.sync_asset, location.transform_asset],
        selection=[AssetKey(["pyairbyte_cache", "products"])],
        instance=DagsterInstance.ephemeral(),
        resources={"dbt": location.defs.resources["dbt"]},
    )
    assert synced.success
    stock = _transform(location)
    assert stock.success, step_failure_messages(stock)
    assert forks == []

    monkeypatch.setenv("DATAPLATFORM_DBT_FORK", "true")
    forked = _transform(location)
    assert forked.success, step_failure_messages(forked)
    assert len(forks) == 1 and forks[0][1] == "build"
    assert _outcome(forked) == _outcome(stock)
    materialized, checks = _outcome(forked)
    assert {"staging_products", "products_reporting"} <= materialized
    assert checks and all(checks.values()), checks

    # A failing dbt test: the check fails and the step fails with dagster-dbt's own error.
    with pg_conn.cursor() as cursor:
        cursor.execute("insert into pyairbyte_cache.products select * from "
                       "pyairbyte_cache.products limit 1")  # fmt: skip
    pg_conn.commit()
    try:
        failed = _transform(location)
    finally:  # the duplicate must not reach later tests' syncs of the same table
        with pg_conn.cursor() as cursor:
            cursor.execute("delete from pyairbyte_cache.products a using pyairbyte_cache.products "
                           "b where a.id = b.id and a.ctid > b.ctid")  # fmt: skip
        pg_conn.commit()
    assert not failed.success
    checks = _outcome(failed)[1]
    assert checks["pyairbyte_cache/products:source_unique_sample_connector_products_id"] is False
    message = "\n".join(step_failure_messages(failed))
    assert "The dbt CLI process with command" in message
    assert "failed with exit code `1`" in message
