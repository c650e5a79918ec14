from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from dagster_code.lib.resources import EventApiResource
from pyairbyte.errors import ApiCallError
from pyairbyte.utils.event_store import get_unprocessed_or_failed_events

from .event_gen_assets import USER_SYNC_EVENT, user_sync_event_gen

# Business decision: bound one run's work; the rest waits for the next run.
MAX_EVENTS_PER_RUN = 1000


@asset(
    name="user_sync_event_handler",
    group_name="nrc_integrations",
    deps=[user_sync_event_gen],
    kinds={"api", "postgres"},
)
def user_sync_event_handler(
    context: AssetExecutionContext, user_sync_api: EventApiResource
) -> MaterializeResult:
    """Send every pending or failed USER_SYNC_EVENT to the target API (NRC_USER_SYNC_URL).

    Each outcome is recorded on its event; the asset fails if any call failed, after trying
    them all, so the failures are visible and retried by the next run.
    """
    events = get_unprocessed_or_failed_events(USER_SYNC_EVENT, limit=MAX_EVENTS_PER_RUN)
    processed = skipped = 0
    errors: list[str] = []
    for event in events:
        try:
            outcome = user_sync_api.send(event["id"], event["event_data"])
        except ApiCallError as exc:  # recorded on the event; go on with the next one
            errors.append(f"event {exc.event_id}: {exc}")
            continue
        if outcome.skipped:  # another handler has it, or it was processed meanwhile
            skipped += 1
        else:
            processed += 1
    metadata = {
        "events_found": MetadataValue.int(len(events)),
        "processed": MetadataValue.int(processed),
        "failed": MetadataValue.int(len(errors)),
        "skipped": MetadataValue.int(skipped),
        "errors": MetadataValue.json(errors[:20]),
    }
    if errors:
        raise Failure(
            description=(
                f"{len(errors)} of {len(events)} {USER_SYNC_EVENT} events failed (they are "
                f"retried next run); first: {errors[0]}"
            ),
            metadata=metadata,
        )
    context.log.info(f"Processed {processed} {USER_SYNC_EVENT} events")
    return MaterializeResult(metadata=metadata)
