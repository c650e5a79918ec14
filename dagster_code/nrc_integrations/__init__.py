"""nrc_integrations: the guide's event-processing pattern (port 4270, enabled: false until
configured).

`user_sync_event_gen` queries users from the Hasura GraphQL API and writes one USER_SYNC_EVENT
per user into the event store (duplicates are skipped, so reruns add only changed users);
`user_sync_event_handler` sends every pending or failed USER_SYNC_EVENT to the target API
through `api_call`, which records the outcome on each event. Failed events are retried by the
next run until EVENT_STORE_MAX_ATTEMPTS.

Configure, through the resources (each EnvVar must be set when a run launches; the launch
fails naming any that is missing):
- `graphql`: HASURA_GRAPHQL_ENDPOINT and HASURA_GRAPHQL_ADMIN_SECRET (set it empty to send
  HASURA_GRAPHQL_BEARER_TOKEN, read by pyairbyte.settings, instead);
- `user_sync_api`: NRC_USER_SYNC_URL, the URL each user is POSTed to;
- the event store: POSTGRES_* and EVENT_STORE_SCHEMA (default event_store), from
  pyairbyte.settings, which have defaults.
"""

from dagster import Definitions, EnvVar, in_process_executor

from dagster_code.lib.resources import EventApiResource, GraphQLResource

from .assets import user_sync_event_gen, user_sync_event_handler
from .jobs import nrc_integrations_pipeline_job

defs = Definitions(
    assets=[user_sync_event_gen, user_sync_event_handler],
    jobs=[nrc_integrations_pipeline_job],
    resources={
        "graphql": GraphQLResource(
            endpoint=EnvVar("HASURA_GRAPHQL_ENDPOINT"),
            admin_secret=EnvVar("HASURA_GRAPHQL_ADMIN_SECRET"),
        ),
        "user_sync_api": EventApiResource(url=EnvVar("NRC_USER_SYNC_URL")),
    },
    # Steps run one after another in the run worker: a process per step would re-import
    # dagster, dbt and airbyte each time (most of a run's orchestration overhead).
    executor=in_process_executor,
)
