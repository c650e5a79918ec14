from dagster import AssetSelection, define_asset_job

from dagster_code.lib.sync import connector_tags

airbyte_sync_pipeline_job = define_asset_job(
    name="airbyte_sync_pipeline",
    selection=AssetSelection.groups("airbyte_sync"),
    description="Sync faker users into the PostgreSQL cache, then build staging and reporting",
    tags=connector_tags("source-faker"),
)
