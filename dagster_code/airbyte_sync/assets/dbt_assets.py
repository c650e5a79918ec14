from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource, dbt_assets

from dagster_code.lib.dbt import PlatformDbtTranslator, prepared_manifest


@dbt_assets(
    manifest=prepared_manifest(),
    select="source:faker+",
    name="faker_users_dbt_models",
    dagster_dbt_translator=PlatformDbtTranslator(
        group_name="airbyte_sync", source_tests_as_checks=True
    ),
)
def faker_users_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
    """staging_faker_users and faker_users_reporting, one asset each; dbt tests are checks."""
    yield from dbt.cli(["build"], context=context).stream()
