"""mysql_tables_sync: the guide's database-sync pattern for MariaDB/MySQL (port 4271,
enabled: false until configured).

`mysql_tables_sync_assets` copies the tables listed in MYSQL_SYNC_TABLES from database
MYSQL_SYNC_DATABASE on MYSQL_HOST into the PostgreSQL cache schema (MYSQL_SYNC_CACHE_SCHEMA,
default pyairbyte_cache) as `<MYSQL_SYNC_TABLE_PREFIX><table>` (default prefix `mysql_`); each
table is replaced atomically, so dbt always reads a complete copy.

Configure, through the `mysql_source` resource: MYSQL_HOST, MYSQL_SYNC_DATABASE and
MYSQL_SYNC_TABLES (comma-separated) are EnvVars, required when a run launches (the launch fails
naming any that is missing); MYSQL_PORT, MYSQL_USER, MYSQL_PASSWORD, MYSQL_SYNC_CACHE_SCHEMA,
MYSQL_SYNC_TABLE_PREFIX and POSTGRES_* (the cache) have defaults in pyairbyte.settings.
"""

from dagster import Definitions, EnvVar, in_process_executor

from dagster_code.lib.resources import MySqlSourceResource

from .assets import mysql_tables_sync_assets
from .jobs import mysql_tables_sync_pipeline_job

defs = Definitions(
    assets=[mysql_tables_sync_assets],
    jobs=[mysql_tables_sync_pipeline_job],
    resources={
        "mysql_source": MySqlSourceResource(
            host=EnvVar("MYSQL_HOST"),
            database=EnvVar("MYSQL_SYNC_DATABASE"),
            tables=EnvVar("MYSQL_SYNC_TABLES"),
        )
    },
    # One step, run in the run worker itself (no extra process to start).
    executor=in_process_executor,
)
