"""Turning a `sync_connector` result dict into asset metadata, or a failed asset."""

from __future__ import annotations

from dagster import AssetExecutionContext, MetadataValue

# Run tag for the instance's tag concurrency limit (platform/dagster.yaml): two runs that sync
# the same connector never run at once.
CONNECTOR_TAG = "dataplatform/connector"


def connector_tags(connector_name: str) -> dict[str, str]:
    return {CONNECTOR_TAG: connector_name}


def report_sync_result(context: AssetExecutionContext, result: dict) -> dict:
    """Add the guide's metadata; raise with the source's error when the sync failed."""
    common = {
        "cache_type": MetadataValue.text(str(result.get("cache_type"))),
        "cache_schema": MetadataValue.text(str(result.get("cache_schema"))),
        "duration_seconds": MetadataValue.float(float(result.get("duration_seconds") or 0)),
    }
    if result.get("status") == "success":
        context.add_output_metadata(
            {
                **common,
                "status": MetadataValue.text("success"),
                "details": MetadataValue.json(result.get("result", {})),
                "tables": MetadataValue.json(result.get("tables", {})),
                "records_synced": MetadataValue.int(sum(result.get("result", {}).values())),
            }
        )
        context.log.info("Data synced to the PostgreSQL cache; ready for dbt")
        return result
    error = result.get("error") or "Unknown error"
    context.add_output_metadata(
        {**common, "status": MetadataValue.text("error"), "error": MetadataValue.text(error)}
    )
    raise RuntimeError(f"PyAirbyte sync of {result.get('connector')} failed: {error}")
