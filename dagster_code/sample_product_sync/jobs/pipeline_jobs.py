from ..location import location

sample_product_sync_pipeline_job = location.job
