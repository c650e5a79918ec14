from ..location import location

faker_users_dbt_models = location.transform_asset
