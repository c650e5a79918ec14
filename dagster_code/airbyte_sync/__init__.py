"""airbyte_sync: source-faker users from PyPI -> cache -> dbt staging/reporting (port 4267).

Declared in location.py; the assets and the job are built by dagster_code.lib.connector_location.
"""

from .location import location

defs = location.defs
