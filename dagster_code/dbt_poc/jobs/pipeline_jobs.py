from ..location import location

dbt_poc_pipeline_job = location.job
