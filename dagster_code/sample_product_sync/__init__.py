"""sample_product_sync: the declarative sample products connector -> cache -> dbt (port 4268).

Declared in location.py; the assets and the job are built by dagster_code.lib.connector_location.
"""

from .location import location

defs = location.defs
