"""airbyte_sync: source-faker users from PyPI -> cache -> dbt staging/reporting (port 4267)."""

from dagster import Definitions

from dagster_code.lib.dbt import dbt_resource

from .assets import faker_users_dbt_models, sync_faker_users
from .jobs import airbyte_sync_pipeline_job

defs = Definitions(
    assets=[sync_faker_users, faker_users_dbt_models],
    resources={"dbt": dbt_resource()},
    jobs=[airbyte_sync_pipeline_job],
)
