"""Each location's pipeline job, run in-process against real PostgreSQL, PyAirbyte and dbt."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from dataplatform.local.sample_api import load_fixture_products
from tests.helpers import rows, scalar, step_failure_messages

FAKER_COUNT = 300


def _run(defs, job_name: str):
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)


def _check_results(result) -> dict[str, bool]:
    return {
        f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}": evaluation.passed
        for evaluation in (
            event.asset_check_evaluation_data
            for event in result.all_events
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
        )
    }


def test_sample_product_pipeline_moves_every_product(pg, pg_conn, sample_api):
    from dagster_code.sample_product_sync import defs

    result = _run(defs, "sample_product_sync_pipeline")
    assert result.success, step_failure_messages(result)

    expected = {p["id"]: p for p in load_fixture_products()}
    cached = dict(rows(pg_conn, "select id, title from pyairbyte_cache.products"))
    assert cached == {pid: p["title"] for pid, p in expected.items()}

    reported = rows(
        pg_conn, "select product_id, discounted_price, tag_count from reporting.products_reporting"
    )
    assert sorted(r[0] for r in reported) == sorted(expected)
    for product_id, discounted_price, tag_count in reported:
        product = expected[product_id]
        want = round(product["price"] * (1 - product["discountPercentage"] / 100), 2)
        assert float(discounted_price) == pytest.approx(want, abs=0.011)
        assert tag_count == len(product["tags"])

    # meta.createdAt is a real timestamptz column in staging, holding the served instant.
    assert (
        scalar(
            pg_conn,
            "select data_type from information_schema.columns where table_schema = 'staging' "
            "and table_name = 'staging_products' and column_name = 'created_at'",
        )
        == "timestamp with time zone"
    )
    first = expected[1]["meta"]["createdAt"]
    assert scalar(
        pg_conn,
        "select created_at = %s::timestamptz from staging.staging_products where product_id = 1",
        (first,),
    )

    # The transform ran dbt build: models, their tests and the source tests all passed.
    transform = result.asset_materializations_for_node("transform_sample_product_data")[0]
    by_status = transform.metadata["results_by_status"].data
    assert by_status.get("success") == 2 and by_status.get("pass", 0) >= 7, by_status
    assert set(by_status) <= {"success", "pass"}


def test_faker_pipeline_fills_reporting(pg, pg_conn, monkeypatch):
    from dagster_code.airbyte_sync import defs

    monkeypatch.setenv("FAKER_COUNT", str(FAKER_COUNT))
    monkeypatch.setenv("FAKER_SEED", "42")
    result = _run(defs, "airbyte_sync_pipeline")
    assert result.success, step_failure_messages(result)

    assert scalar(pg_conn, "select count(*) from pyairbyte_cache.users") == FAKER_COUNT
    assert scalar(pg_conn, "select count(*) from reporting.faker_users_reporting") == FAKER_COUNT
    # Every reporting row matches its source user, with the derived columns computed right.
    mismatches = scalar(
        pg_conn,
        """
        select count(*) from reporting.faker_users_reporting r
        join pyairbyte_cache.users u on u.id = r.user_id
        where r.email_domain is distinct from lower(split_part(u.email, '@', 2))
           or r.age is distinct from u.age
           or r.city is distinct from (u.address::jsonb ->> 'city')
           or r.age_band <> case when u.age < 18 then 'under 18' when u.age < 30 then '18-29'
                                 when u.age < 50 then '30-49' when u.age < 65 then '50-64'
                                 else '65+' end
        """,
    )
    assert mismatches == 0

    checks = _check_results(result)
    assert checks, "dbt tests should have run as asset checks"
    assert all(checks.values()), checks
    assert "sync_faker_users:source_unique_faker_users_id" in checks
    assert "faker_users_reporting:unique_faker_users_reporting_user_id" in checks


def test_dbt_poc_builds_every_model(pg, pg_conn, sample_api, monkeypatch):
    """dbt_poc builds all models from what the syncs left in the cache."""
    from dagster_code.airbyte_sync import defs as faker_defs
    from dagster_code.dbt_poc import defs
    from dagster_code.sample_product_sync import defs as product_defs

    monkeypatch.setenv("FAKER_COUNT", str(FAKER_COUNT))
    # The cache tables exist from earlier tests in this session, or are synced now.
    for table, location_defs, job in (
        ("products", product_defs, "sample_product_sync_pipeline"),
        ("users", faker_defs, "airbyte_sync_pipeline"),
    ):
        if not scalar(pg_conn, "select to_regclass(%s) is not null", (f"pyairbyte_cache.{table}",)):
            assert _run(location_defs, job).success

    result = _run(defs, "dbt_poc_pipeline")
    assert result.success, step_failure_messages(result)
    materialized = {
        event.asset_key.to_user_string()
        for event in result.get_asset_materialization_events()
        for event in [event.event_specific_data.materialization]
    }
    assert materialized == {
        "dbt_poc/staging_products",
        "dbt_poc/products_reporting",
        "dbt_poc/staging_faker_users",
        "dbt_poc/faker_users_reporting",
    }
    checks = _check_results(result)
    assert len(checks) == 12 and all(checks.values()), checks
