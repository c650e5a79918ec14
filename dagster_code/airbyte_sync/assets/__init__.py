# Assets package for the airbyte_sync code location
from .dbt_assets import faker_users_dbt_models
from .sync_assets import sync_faker_users

__all__ = ["faker_users_dbt_models", "sync_faker_users"]
