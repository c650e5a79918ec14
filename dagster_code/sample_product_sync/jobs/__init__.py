# Jobs package for the sample_product_sync code location
from .pipeline_jobs import sample_product_sync_pipeline_job

__all__ = ["sample_product_sync_pipeline_job"]
