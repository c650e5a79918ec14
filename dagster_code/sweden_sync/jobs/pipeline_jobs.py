from dagster import define_asset_job

from dagster_code.lib.sync import connector_tags

from ..assets import cleanup_airbyte_cache_tables_sweden, sample_connector_sync_assets_sweden

sweden_sync_pipeline_job = define_asset_job(
    name="sweden_sync_pipeline",
    selection=[cleanup_airbyte_cache_tables_sweden, sample_connector_sync_assets_sweden],
    description="Clean the sample connector's tables in the Sweden cache, then re-sync them",
    # Its own concurrency key: this run writes the Sweden cache, not the default one.
    tags=connector_tags("sample-connector@sweden"),
)
