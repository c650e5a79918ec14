"""airbyte_sync: source-faker users from PyPI -> cache -> dbt staging/reporting (port 4267)."""

from dagster import Definitions, in_process_executor

from dagster_code.lib.dbt import dbt_resource

from .assets import faker_users_dbt_models, sync_faker_users
from .jobs import airbyte_sync_pipeline_job

defs = Definitions(
    assets=[sync_faker_users, faker_users_dbt_models],
    resources={"dbt": dbt_resource()},
    jobs=[airbyte_sync_pipeline_job],
    # Steps run one after another in the run worker: a process per step would re-import
    # dagster, dbt and airbyte each time (most of a run's orchestration overhead).
    executor=in_process_executor,
)
