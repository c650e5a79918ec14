from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from dagster_code.lib.resources import MySqlSourceResource
from pyairbyte.errors import DatabaseSyncError


@asset(name="mysql_tables_sync_assets", group_name="mysql_tables_sync", kinds={"mysql", "postgres"})
def mysql_tables_sync_assets(
    context: AssetExecutionContext, mysql_source: MySqlSourceResource
) -> MaterializeResult:
    """Copy the configured MariaDB/MySQL tables into the PostgreSQL cache for dbt."""
    # Business decisions come from the resource (so one image serves every environment): which
    # server, database and tables, and where they land.
    cache_schema, _ = mysql_source.target()
    try:
        rows = mysql_source.copy_tables()
    except DatabaseSyncError as exc:
        raise Failure(
            description=f"MySQL tables sync failed: {exc}",
            metadata={
                "cache_schema": MetadataValue.text(cache_schema),
                "rows": MetadataValue.json(exc.rows),
                "failed_tables": MetadataValue.json(exc.failed_tables),
            },
        ) from exc
    context.log.info(f"Synced {len(rows)} tables: {rows}")
    return MaterializeResult(
        metadata={
            "cache_schema": MetadataValue.text(cache_schema),
            "tables_synced": MetadataValue.int(len(rows)),
            "rows": MetadataValue.json(rows),
        }
    )
