from dagster import AssetExecutionContext, MaterializeResult, asset

from dagster_code.lib.resources import PostgresCacheResource
from dagster_code.lib.sync import materialize_sync_result
from pyairbyte.utils.pyairbyte_sync import sync_connector

from .cleanup_assets import CONNECTOR, cleanup_airbyte_cache_tables_sweden


@asset(
    name="sample_connector_sync_assets_sweden",
    group_name="sweden_data_sync",
    deps=[cleanup_airbyte_cache_tables_sweden],
    kinds={"airbyte", "postgres"},
)
def sample_connector_sync_assets_sweden(
    context: AssetExecutionContext, sweden_cache: PostgresCacheResource
) -> MaterializeResult:
    """Sync the sample products connector into the Sweden cache (tables sample_connector_*)."""
    cache = sweden_cache.get_cache(CONNECTOR)  # business decision: the Sweden cache
    result = sync_connector(CONNECTOR, ["products"], cache=cache)
    return materialize_sync_result(context, result)
