# Assets package for the mysql_tables_sync code location
from .sync_assets import mysql_tables_sync_assets

__all__ = ["mysql_tables_sync_assets"]
