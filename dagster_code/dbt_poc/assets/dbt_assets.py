from ..location import location

all_dbt_models = location.models_asset
