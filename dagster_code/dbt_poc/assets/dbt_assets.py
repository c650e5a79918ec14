from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource, dbt_assets

from dagster_code.lib.dbt import PlatformDbtTranslator, prepared_manifest


@dbt_assets(
    manifest=prepared_manifest(),
    name="all_dbt_models",
    # Prefixed, because airbyte_sync also materializes the faker models under their plain keys.
    dagster_dbt_translator=PlatformDbtTranslator(key_prefix=["dbt_poc"], group_name="dbt_poc"),
)
def all_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
    """Every dbt model in dbt_models/ as its own asset; dbt tests are asset checks. dbt sources
    map to the sync assets of the other locations, so the graph shows where data comes from."""
    yield from dbt.cli(["build"], context=context).stream()
