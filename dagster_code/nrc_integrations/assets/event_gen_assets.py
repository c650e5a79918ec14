from dagster import AssetExecutionContext, MetadataValue, asset

from pyairbyte.utils.event_store import bulk_write_events
from pyairbyte.utils.graphql_util import query_graphql_api

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
def user_sync_event_gen(context: AssetExecutionContext) -> dict:
    """Create one USER_SYNC_EVENT per active user; an unchanged user is not queued again."""
    result = query_graphql_api(USERS_QUERY)  # raises with the GraphQL or HTTP error
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
    bulk = bulk_write_events(events)
    context.add_output_metadata(
        {
            "status": MetadataValue.text(bulk["status"]),
            "users_found": MetadataValue.int(len(users)),
            "events_created": MetadataValue.int(bulk["events_created"]),
            "duplicates_skipped": MetadataValue.int(bulk["duplicates_skipped"] or 0),
        }
    )
    if bulk["status"] != "success":
        raise RuntimeError(f"Writing {USER_SYNC_EVENT} events failed: {bulk['error']}")
    context.log.info(
        f"{len(users)} users: {bulk['events_created']} new events, "
        f"{bulk['duplicates_skipped']} already queued"
    )
    return bulk
