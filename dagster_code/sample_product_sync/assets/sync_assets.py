from ..location import location

sync_sample_connector = location.sync_asset
