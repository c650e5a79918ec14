from ..location import location

airbyte_sync_pipeline_job = location.job
