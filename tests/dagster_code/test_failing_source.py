"""A failing source fails the sync asset with the source's error, and the tables of the previous
successful sync keep their rows."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from tests.helpers import scalar, step_failure_messages


@pytest.fixture
def synced_products(pg, pg_conn, sample_api):
    from dagster_code.sample_product_sync import defs

    job = defs.resolve_job_def("sample_product_sync_pipeline")
    assert job.execute_in_process(instance=DagsterInstance.ephemeral()).success
    assert scalar(pg_conn, "select count(*) from pyairbyte_cache.products") == 30
    return defs


@pytest.mark.parametrize("fail_from_skip", [0, 10], ids=["check-fails", "fails-mid-stream"])
def test_http_500_fails_the_sync_and_keeps_previous_tables(
    synced_products, pg_conn, sample_api, fail_from_skip
):
    sample_api.fail_with_status = 500
    sample_api.fail_from_skip = fail_from_skip

    job = synced_products.resolve_job_def("sample_product_sync_pipeline")
    result = job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)

    assert not result.success
    message = "\n".join(step_failure_messages(result))
    assert "PyAirbyte sync of sample-connector failed" in message
    assert "HTTP Status Code: 500" in message  # the source's own error reaches the user
    # The asset raised dagster.Failure: the UI shows the sync's metadata on the failed step.
    (failure,) = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    failure_metadata = failure.user_failure_data.metadata
    assert failure_metadata["status"].value == "error"
    assert "HTTP Status Code: 500" in failure_metadata["error"].value
    # The transform never ran, and every table from the previous sync is intact.
    assert not result.asset_materializations_for_node("transform_sample_product_data")
    assert scalar(pg_conn, "select count(*) from pyairbyte_cache.products") == 30
    assert scalar(pg_conn, "select count(*) from staging.staging_products") == 30
    assert scalar(pg_conn, "select count(*) from reporting.products_reporting") == 30
