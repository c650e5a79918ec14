from ..location import location

sync_faker_users = location.sync_asset
