from dagster import define_asset_job

from ..assets import mysql_tables_sync_assets

mysql_tables_sync_pipeline_job = define_asset_job(
    name="mysql_tables_sync_pipeline",
    selection=[mysql_tables_sync_assets],
    description="Copy the configured MariaDB/MySQL tables into the PostgreSQL cache",
)
