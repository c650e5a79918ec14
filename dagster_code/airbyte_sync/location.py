"""airbyte_sync, declared: source-faker users (from PyPI) -> pyairbyte_cache.users -> dbt models.

Its schedule, freshness checks and sync retry come from the connector YAML (schedule:,
freshness:, retry:).
"""

from dagster_code.lib.connector_location import ConnectorLocation

location = ConnectorLocation(
    name="airbyte_sync",
    connector="source-faker",
    streams=["users"],
    dbt_source="faker",
    sync_asset_name="sync_faker_users",
    transform_asset_name="faker_users_dbt_models",
    job_name="airbyte_sync_pipeline",
    sync_description="Sync source-faker `users` (installed from PyPI) into pyairbyte_cache.users.",
    transform_description=(
        "staging_faker_users and faker_users_reporting, one asset each; dbt tests are checks."
    ),
    job_description=(
        "Sync faker users into the PostgreSQL cache, then build staging and reporting"
    ),
)
