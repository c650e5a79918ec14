"""dbt_poc: the code location for all dbt asset orchestration (port 4266)."""

from dagster import Definitions, in_process_executor

from dagster_code.lib.dbt import dbt_resource

from .assets import all_dbt_models
from .jobs import dbt_poc_pipeline_job

defs = Definitions(
    assets=[all_dbt_models],
    resources={"dbt": dbt_resource()},
    jobs=[dbt_poc_pipeline_job],
    # Steps run one after another in the run worker: a process per step would re-import
    # dagster, dbt and airbyte each time (most of a run's orchestration overhead).
    executor=in_process_executor,
)
