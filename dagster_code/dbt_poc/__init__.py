"""dbt_poc: the code location for all dbt asset orchestration (port 4266).

Declared in location.py; the asset and the job are built by dagster_code.lib.connector_location.
"""

from .location import location

defs = location.defs
