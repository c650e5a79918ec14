from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from dagster_code.lib.resources import GraphQLResource
from pyairbyte.errors import EventStoreError
from pyairbyte.utils.event_store import bulk_write_events

USER_SYNC_EVENT = "USER_SYNC_EVENT"

USERS_QUERY = """
query ActiveUsers {
  users(active: true) {
    id
    first_name
    last_name
  }
}
"""


@asset(name="user_sync_event_gen", group_name="nrc_integrations", kinds={"graphql", "postgres"})
def user_sync_event_gen(
    context: AssetExecutionContext, graphql: GraphQLResource
) -> MaterializeResult:
    """Create one USER_SYNC_EVENT per active user; an unchanged user is not queued again."""
    result = graphql.query(USERS_QUERY)  # raises with the GraphQL or HTTP error
    users = (result.get("data") or {}).get("users") or []

    # Business decision: the target system needs id and names only.
    events = [
        {
            "event_type": USER_SYNC_EVENT,
            "event_data": {
                "user_id": user.get("id"),
                "first_name": user.get("first_name"),
                "last_name": user.get("last_name"),
            },
        }
        for user in users
    ]
    try:
        written = bulk_write_events(events)
    except EventStoreError as exc:
        raise Failure(
            description=f"Writing {USER_SYNC_EVENT} events failed: {exc}",
            metadata={
                "users_found": MetadataValue.int(len(users)),
                "events_created": MetadataValue.int(exc.events_created),
            },
        ) from exc
    context.log.info(
        f"{len(users)} users: {written.events_created} new events, "
        f"{written.duplicates_skipped} already queued"
    )
    return MaterializeResult(
        metadata={
            "users_found": MetadataValue.int(len(users)),
            "events_created": MetadataValue.int(written.events_created),
            "duplicates_skipped": MetadataValue.int(written.duplicates_skipped),
        }
    )
