from dagster import define_asset_job

from ..assets import user_sync_event_gen, user_sync_event_handler

nrc_integrations_pipeline_job = define_asset_job(
    name="nrc_integrations_pipeline",
    selection=[user_sync_event_gen, user_sync_event_handler],
    description="Queue USER_SYNC_EVENTs from the GraphQL users, then send them to the target API",
)
