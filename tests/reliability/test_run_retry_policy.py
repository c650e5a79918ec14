"""Which failed runs platform/dagster.yaml retries, asked of Dagster's own retry decision.

The platform test (test_platform_processes.py) shows an interrupted run retried end to end; this
one covers the rest of the policy in milliseconds, without services: a step failure is not
retried, a job's `dagster/max_retries: "0"` tag opts out, and a retry is not retried again.
"""

from __future__ import annotations

import pytest
import yaml
from dagster._core.events import RunFailureReason
from dagster._core.execution.retries import auto_reexecution_should_retry_run
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test, instance_for_test

from pyairbyte import settings


def _run_retries() -> dict:
    config = yaml.safe_load((settings.app_root() / "platform" / "dagster.yaml").read_text())
    return config["run_retries"]


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """One instance with the platform's policy (run storage on SQLite: no service needed)."""
    temp_dir = str(tmp_path_factory.mktemp("dagster_home"))
    with instance_for_test(overrides={"run_retries": _run_retries()}, temp_dir=temp_dir) as inst:
        yield inst


def test_the_policy_is_on_once_and_not_for_step_failures():
    assert _run_retries() == {
        "enabled": True,
        "max_retries": 1,
        "retry_on_asset_or_op_failure": False,
    }


@pytest.mark.parametrize(
    ("reason", "tags", "retried"),
    [
        (RunFailureReason.UNEXPECTED_TERMINATION, {}, True),  # platform stop, SIGTERM mid-run
        (RunFailureReason.RUN_WORKER_RESTART, {}, True),
        (RunFailureReason.START_TIMEOUT, {}, True),
        (RunFailureReason.STEP_FAILURE, {}, False),  # a source error, a failed dbt test
        (RunFailureReason.UNEXPECTED_TERMINATION, {"dagster/max_retries": "0"}, False),
    ],
)
def test_which_failed_runs_are_retried(instance, reason, tags, retried):
    run = create_run_for_test(instance, status=DagsterRunStatus.FAILURE, tags=tags)
    assert auto_reexecution_should_retry_run(instance, run, reason) is retried


def test_a_retry_is_not_retried_again(instance):
    first = create_run_for_test(instance, status=DagsterRunStatus.FAILURE)
    retry = create_run_for_test(
        instance,
        status=DagsterRunStatus.FAILURE,
        root_run_id=first.run_id,
        parent_run_id=first.run_id,
        tags={"dagster/root_run_id": first.run_id, "dagster/parent_run_id": first.run_id},
    )
    reason = RunFailureReason.UNEXPECTED_TERMINATION
    assert auto_reexecution_should_retry_run(instance, retry, reason) is False
