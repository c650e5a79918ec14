# Jobs package for the airbyte_sync code location
from .pipeline_jobs import airbyte_sync_pipeline_job

__all__ = ["airbyte_sync_pipeline_job"]
