"""dbt_poc: the dbt models no connector location owns, e.g. cross-connector reporting (4266).

Declared in location.py; the asset and the job are built by dagster_code.lib.connector_location.
"""

from .location import location

defs = location.defs
