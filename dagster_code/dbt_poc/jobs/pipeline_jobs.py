from dagster import define_asset_job

from ..assets import all_dbt_models

dbt_poc_pipeline_job = define_asset_job(
    name="dbt_poc_pipeline",
    selection=[all_dbt_models],
    description="Build every dbt model and run every dbt test on the current cache contents",
)
