# Jobs package for the nrc_integrations code location
from .pipeline_jobs import nrc_integrations_pipeline_job

__all__ = ["nrc_integrations_pipeline_job"]
