# Assets package for the nrc_integrations code location
from .event_gen_assets import USER_SYNC_EVENT, user_sync_event_gen
from .event_handler_assets import user_sync_event_handler

__all__ = ["USER_SYNC_EVENT", "user_sync_event_gen", "user_sync_event_handler"]
