"""nrc_integrations: the guide's event-processing pattern (port 4270, enabled: false until
configured).

`user_sync_event_gen` queries users from the Hasura GraphQL API and writes one USER_SYNC_EVENT
per user into the event store (duplicates are skipped, so reruns add only changed users);
`user_sync_event_handler` sends every pending or failed USER_SYNC_EVENT to the target API
through `api_call`, which records the outcome on each event. Failed events are retried by the
next run until EVENT_STORE_MAX_ATTEMPTS.

Configure: HASURA_GRAPHQL_ENDPOINT and HASURA_GRAPHQL_ADMIN_SECRET (or
HASURA_GRAPHQL_BEARER_TOKEN) for the source, NRC_USER_SYNC_URL (the URL each user is POSTed to)
for the target, and POSTGRES_* for the event store (schema EVENT_STORE_SCHEMA, default
event_store).
"""

from dagster import Definitions, in_process_executor

from .assets import user_sync_event_gen, user_sync_event_handler
from .jobs import nrc_integrations_pipeline_job

defs = Definitions(
    assets=[user_sync_event_gen, user_sync_event_handler],
    jobs=[nrc_integrations_pipeline_job],
    # Steps run one after another in the run worker: a process per step would re-import
    # dagster, dbt and airbyte each time (most of a run's orchestration overhead).
    executor=in_process_executor,
)
