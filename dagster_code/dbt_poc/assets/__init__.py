# Assets package for the dbt_poc code location
from .dbt_assets import all_dbt_models

__all__ = ["all_dbt_models"]
