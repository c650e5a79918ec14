# Assets package for the sweden_sync code location
from .cleanup_assets import cleanup_airbyte_cache_tables_sweden
from .sync_assets import sample_connector_sync_assets_sweden

__all__ = ["cleanup_airbyte_cache_tables_sweden", "sample_connector_sync_assets_sweden"]
