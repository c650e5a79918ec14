from dagster import AssetExecutionContext, asset
from dagster_dbt import DbtCliResource

from dagster_code.lib.dbt import run_dbt_build


@asset(
    name="transform_sample_product_data",
    group_name="sample_product_sync",
    deps=["sync_sample_connector"],
    kinds={"dbt", "postgres"},
)
def transform_sample_product_data(context: AssetExecutionContext, dbt: DbtCliResource) -> dict:
    """Build staging.staging_products and reporting.products_reporting, with their tests and the
    source tests on pyairbyte_cache.products."""
    return run_dbt_build(context, dbt, "source:sample_connector+")
