from dagster import define_asset_job

from dagster_code.lib.sync import connector_tags

from ..assets import sync_sample_connector, transform_sample_product_data

sample_product_sync_pipeline_job = define_asset_job(
    name="sample_product_sync_pipeline",
    selection=[sync_sample_connector, transform_sample_product_data],
    description="Sync sample products into the PostgreSQL cache, then build them with dbt",
    tags=connector_tags("sample-connector"),
)
