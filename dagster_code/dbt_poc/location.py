"""dbt_poc, declared: the dbt models no connector location owns (cross-connector reporting)."""

from dagster_code.lib.connector_location import DbtModelsLocation

location = DbtModelsLocation(
    name="dbt_poc",
    models_asset_name="all_dbt_models",
    models_description=(
        "The dbt models that read several connectors' data, one asset each; dbt tests are asset "
        "checks. Their inputs are the connector locations' assets, so lineage crosses locations."
    ),
    job_name="dbt_poc_pipeline",
    job_description="Build the cross-connector dbt models and run their tests",
)
