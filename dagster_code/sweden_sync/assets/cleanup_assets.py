from dagster import AssetExecutionContext, MetadataValue, asset

from pyairbyte.utils.cache_db_manager import PyAirbyteCacheDBManager

CACHE_NAME = "sweden"
CONNECTOR = "sample-connector"


@asset(
    name="cleanup_airbyte_cache_tables_sweden", group_name="sweden_data_sync", kinds={"postgres"}
)
def cleanup_airbyte_cache_tables_sweden(context: AssetExecutionContext) -> dict:
    """Drop the sample connector's tables and state in the Sweden cache before it is re-synced.

    Business decision: the Sweden copy is always a full reload, never an incremental merge onto
    whatever an earlier run left behind.
    """
    manager = PyAirbyteCacheDBManager.for_cache(CACHE_NAME)
    result = manager.cleanup_connector_tables(CONNECTOR)
    context.add_output_metadata(
        {
            "status": MetadataValue.text(result["status"]),
            "schema": MetadataValue.text(result["schema"]),
            "prefix": MetadataValue.text(result["prefix"]),
            "tables_dropped": MetadataValue.json(result["tables_dropped"]),
            "state_rows_deleted": MetadataValue.int(result["state_rows_deleted"]),
        }
    )
    if result["status"] != "success":
        raise RuntimeError(f"Sweden cache cleanup failed: {result['error']}")
    context.log.info(f"Dropped {len(result['tables_dropped'])} tables in {result['schema']}")
    return result
