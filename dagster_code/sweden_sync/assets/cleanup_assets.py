from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from dagster_code.lib.resources import PostgresCacheResource
from pyairbyte.errors import CacheCleanupError

CONNECTOR = "sample-connector"


@asset(
    name="cleanup_airbyte_cache_tables_sweden", group_name="sweden_data_sync", kinds={"postgres"}
)
def cleanup_airbyte_cache_tables_sweden(
    context: AssetExecutionContext, sweden_cache: PostgresCacheResource
) -> MaterializeResult:
    """Drop the sample connector's tables and state in the Sweden cache before it is re-synced.

    Business decision: the Sweden copy is always a full reload, never an incremental merge onto
    whatever an earlier run left behind.
    """
    manager = sweden_cache.db_manager()
    try:
        result = manager.cleanup_connector_tables(CONNECTOR)
    except CacheCleanupError as exc:
        raise Failure(
            description=f"Sweden cache cleanup failed: {exc}",
            metadata={"schema": MetadataValue.text(manager.schema)},
        ) from exc
    context.log.info(f"Dropped {len(result.tables_dropped)} tables in {result.schema}")
    return MaterializeResult(
        metadata={
            "schema": MetadataValue.text(result.schema),
            "prefix": MetadataValue.text(result.prefix),
            "tables_dropped": MetadataValue.json(result.tables_dropped),
            "state_rows_deleted": MetadataValue.int(result.state_rows_deleted),
        }
    )
