import os

from dagster import AssetExecutionContext, MetadataValue, asset

from pyairbyte.utils.api_call import call_api_for_event_processing
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
def user_sync_event_handler(context: AssetExecutionContext) -> dict:
    """POST every pending or failed USER_SYNC_EVENT to the target API (NRC_USER_SYNC_URL).

    Each outcome is recorded on its event; the asset fails if any call failed, after trying
    them all, so the failures are visible and retried by the next run.
    """
    url = os.environ.get("NRC_USER_SYNC_URL")
    if not url:
        raise RuntimeError(
            "NRC_USER_SYNC_URL is not set: set it to the URL that USER_SYNC_EVENTs are POSTed to"
        )
    events = get_unprocessed_or_failed_events(USER_SYNC_EVENT, limit=MAX_EVENTS_PER_RUN)
    outcomes = [
        call_api_for_event_processing(event["id"], "POST", url, event["event_data"])
        for event in events
    ]
    counts = {status: 0 for status in ("success", "error", "skipped")}
    for outcome in outcomes:
        counts[outcome["status"]] += 1
    errors = [f"event {o['event_id']}: {o['error']}" for o in outcomes if o["status"] == "error"]
    context.add_output_metadata(
        {
            "events_found": MetadataValue.int(len(events)),
            "processed": MetadataValue.int(counts["success"]),
            "failed": MetadataValue.int(counts["error"]),
            "skipped": MetadataValue.int(counts["skipped"]),
            "errors": MetadataValue.json(errors[:20]),
        }
    )
    if errors:
        raise RuntimeError(
            f"{len(errors)} of {len(events)} {USER_SYNC_EVENT} events failed (they are retried "
            f"next run); first: {errors[0]}"
        )
    context.log.info(f"Processed {counts['success']} {USER_SYNC_EVENT} events")
    return {"status": "success", **counts, "events_found": len(events)}
