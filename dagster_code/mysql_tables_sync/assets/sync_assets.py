import os

from dagster import AssetExecutionContext, MetadataValue, asset

from pyairbyte.utils.mysql_sync import sync_mysql_tables


def _required_env(name: str, example: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"{name} is not set: set it, e.g. {name}={example}")
    return value


@asset(name="mysql_tables_sync_assets", group_name="mysql_tables_sync", kinds={"mysql", "postgres"})
def mysql_tables_sync_assets(context: AssetExecutionContext) -> dict:
    """Copy the configured MariaDB/MySQL tables into the PostgreSQL cache for dbt."""
    # Business decisions (from env, so one image serves every environment): which server,
    # database and tables, and where they land.
    tables = [t.strip() for t in _required_env("MYSQL_SYNC_TABLES", "customers,orders").split(",")]
    result = sync_mysql_tables(
        server=_required_env("MYSQL_HOST", "mariadb.example.com"),
        database=_required_env("MYSQL_SYNC_DATABASE", "shop"),
        tables=[t for t in tables if t],
        cache_schema=os.environ.get("MYSQL_SYNC_CACHE_SCHEMA", "pyairbyte_cache"),
        table_prefix=os.environ.get("MYSQL_SYNC_TABLE_PREFIX", "mysql_"),
    )
    context.add_output_metadata(
        {
            "status": MetadataValue.text(result["status"]),
            "cache_schema": MetadataValue.text(result["cache_schema"]),
            "tables_synced": MetadataValue.int(result["tables_synced"]),
            "rows": MetadataValue.json(result["rows"]),
            "failed_tables": MetadataValue.json(result["failed_tables"]),
        }
    )
    if result["status"] != "success":
        raise RuntimeError(f"MySQL tables sync failed: {result['error']}")
    context.log.info(f"Synced {result['tables_synced']} tables: {result['rows']}")
    return result
