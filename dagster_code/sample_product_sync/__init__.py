"""sample_product_sync: the declarative sample products connector -> cache -> dbt (port 4268)."""

from dagster import Definitions, in_process_executor

from dagster_code.lib.dbt import dbt_resource

from .assets import sync_sample_connector, transform_sample_product_data
from .jobs import sample_product_sync_pipeline_job

defs = Definitions(
    assets=[sync_sample_connector, transform_sample_product_data],
    resources={"dbt": dbt_resource()},
    jobs=[sample_product_sync_pipeline_job],
    # Steps run one after another in the run worker: a process per step would re-import
    # dagster, dbt and airbyte each time (most of a run's orchestration overhead).
    executor=in_process_executor,
)
