from dagster import AssetExecutionContext, asset

from dagster_code.lib.sync import report_sync_result
from pyairbyte.utils.pyairbyte_sync import sync_connector

CONNECTOR = "sample-connector"


@asset(
    name="sync_sample_connector", group_name="sample_product_sync", kinds={"airbyte", "postgres"}
)
def sync_sample_connector(context: AssetExecutionContext) -> dict:
    """Sync products from the sample products API straight into pyairbyte_cache.products."""
    result = sync_connector(CONNECTOR, ["products"])
    return report_sync_result(context, result)
