# Jobs package for the sweden_sync code location
from .pipeline_jobs import sweden_sync_pipeline_job

__all__ = ["sweden_sync_pipeline_job"]
