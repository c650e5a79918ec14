"""dbt_poc: the code location for all dbt asset orchestration (port 4266)."""

from dagster import Definitions

from dagster_code.lib.dbt import dbt_resource

from .assets import all_dbt_models
from .jobs import dbt_poc_pipeline_job

defs = Definitions(
    assets=[all_dbt_models],
    resources={"dbt": dbt_resource()},
    jobs=[dbt_poc_pipeline_job],
)
