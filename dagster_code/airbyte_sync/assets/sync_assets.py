from dagster import AssetExecutionContext, asset

from dagster_code.lib.sync import report_sync_result
from pyairbyte.utils.pyairbyte_sync import sync_connector

CONNECTOR = "source-faker"


@asset(name="sync_faker_users", group_name="airbyte_sync", kinds={"airbyte", "postgres"})
def sync_faker_users(context: AssetExecutionContext) -> dict:
    """Sync source-faker `users` (installed from PyPI) into pyairbyte_cache.users."""
    result = sync_connector(CONNECTOR, ["users"])
    return report_sync_result(context, result)
