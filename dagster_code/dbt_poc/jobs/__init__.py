# Jobs package for the dbt_poc code location
from .pipeline_jobs import dbt_poc_pipeline_job

__all__ = ["dbt_poc_pipeline_job"]
