# Jobs package for the mysql_tables_sync code location
from .pipeline_jobs import mysql_tables_sync_pipeline_job

__all__ = ["mysql_tables_sync_pipeline_job"]
