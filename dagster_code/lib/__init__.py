"""Reusable Dagster parts shared by the code locations (thin wrappers over pyairbyte utils).

connector_location.py is the factory every connector location (and dbt_poc) is declared with;
sync.py and dbt.py hold what its assets do with a sync result and a dbt build.
"""
