# Assets package for the sample_product_sync code location
from .dbt_assets import transform_sample_product_data
from .sync_assets import sync_sample_connector

__all__ = ["sync_sample_connector", "transform_sample_product_data"]
