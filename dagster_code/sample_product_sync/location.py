"""sample_product_sync, declared: sample products connector -> pyairbyte_cache.products -> dbt.

Its schedule, freshness checks and sync retry come from the connector YAML (schedule:,
freshness:, retry:).
"""

from dagster_code.lib.connector_location import ConnectorLocation

location = ConnectorLocation(
    name="sample_product_sync",
    connector="sample-connector",
    streams=["products"],
    dbt_source="sample_connector",
    sync_asset_name="sync_sample_connector",
    transform_asset_name="transform_sample_product_data",
    job_name="sample_product_sync_pipeline",
    sync_description=(
        "Sync products from the sample products API straight into pyairbyte_cache.products."
    ),
    transform_description=(
        "Build staging.staging_products and reporting.products_reporting, with their tests and "
        "the source tests on pyairbyte_cache.products."
    ),
    job_description="Sync sample products into the PostgreSQL cache, then build them with dbt",
)
