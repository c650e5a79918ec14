"""dbt_poc, declared: every dbt model in dbt_models/ as its own asset, built by one job."""

from dagster_code.lib.connector_location import DbtModelsLocation

location = DbtModelsLocation(
    name="dbt_poc",
    models_asset_name="all_dbt_models",
    models_description=(
        "Every dbt model in dbt_models/ as its own asset; dbt tests are asset checks. dbt sources "
        "map to the sync assets of the other locations, so the graph shows where data comes from."
    ),
    # Prefixed, because airbyte_sync also materializes the faker models under their plain keys.
    key_prefix=["dbt_poc"],
    job_name="dbt_poc_pipeline",
    job_description=("Build every dbt model and run every dbt test on the current cache contents"),
)
