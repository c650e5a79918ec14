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

    # One asset per table: the cache table, with Dagster's standard table metadata ...
    assert _materialized(result) == {
        "pyairbyte_cache/products",
        "staging_products",
        "products_reporting",
    }
    (table,) = result.asset_materializations_for_node("sync_sample_connector")
    metadata = table.metadata
    assert metadata["dagster/table_name"].value == "pyairbyte_cache.products"
    assert metadata["dagster/row_count"].value == 30
    assert metadata["records_synced"].value == 30
    columns = {c.name: c.type for c in metadata["dagster/column_schema"].value.columns}
    assert {"id", "title", "discountpercentage", "_airbyte_extracted_at"} <= set(columns)
    assert metadata["duration_seconds"].value > 0
    # ... and the transform step built each model as its own asset, its tests and the source
    # tests on the cache table as asset checks, all passing; with the freshness check the
    # connector YAML's `freshness:` puts on the cache table, run right after the sync.
    checks = _check_results(result)
    assert len(checks) == 9 and all(checks.values()), checks
    assert "pyairbyte_cache/products:source_unique_sample_connector_products_id" in checks
    assert checks["pyairbyte_cache/products:freshness_check"] is True


def _materialized(result) -> set[str]:
    return {
        event.event_specific_data.materialization.asset_key.to_user_string()
        for event in result.get_asset_materialization_events()
    }


def test_a_single_stream_materializes_alone(pg, pg_conn, sample_api):
    """The sync is a subsettable multi-asset: one table can be materialized by itself."""
    from dagster import AssetKey, materialize

    from dagster_code.sample_product_sync.location import location

    result = materialize(
        [location.sync_asset, location.transform_asset],
        selection=[AssetKey(["pyairbyte_cache", "products"])],
        instance=DagsterInstance.ephemeral(),
        resources={"dbt": location.defs.resources["dbt"]},
    )
    assert result.success
    assert _materialized(result) == {"pyairbyte_cache/products"}


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
    assert "pyairbyte_cache/users:source_unique_faker_users_id" in checks
    assert "faker_users_reporting:unique_faker_users_reporting_user_id" in checks


def test_dbt_poc_builds_the_cross_connector_models(pg, pg_conn, sample_api, monkeypatch):
    """dbt_poc builds the models that read both connectors, from what the syncs left."""
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
    # Only the model no connector location owns; its inputs are those locations' assets.
    assert _materialized(result) == {"connector_row_counts"}
    counts = dict(rows(pg_conn, "select model_name, row_count from reporting.connector_row_counts"))
    assert counts["staging_products"] == scalar(
        pg_conn, "select count(*) from staging.staging_products"
    )
    checks = _check_results(result)
    assert len(checks) == 3 and all(checks.values()), checks
