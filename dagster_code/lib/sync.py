"""Turning a `sync_connector` result dict into asset metadata, or a failed asset."""

from __future__ import annotations

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue

# Run tag for the instance's tag concurrency limit (platform/dagster.yaml): two runs that sync
# the same connector never run at once.
CONNECTOR_TAG = "dataplatform/connector"


def connector_tags(connector_name: str) -> dict[str, str]:
    return {CONNECTOR_TAG: connector_name}


def sync_metadata(result: dict) -> dict[str, MetadataValue]:
    """The guide's metadata for a sync result, successful or not."""
    metadata: dict[str, MetadataValue] = {}
    tables = result.get("tables") or {}
    if len(tables) == 1:  # the asset is that table: Dagster's standard key says which
        metadata["dagster/table_name"] = MetadataValue.text(next(iter(tables.values())))
    metadata |= {
        "status": MetadataValue.text(str(result.get("status"))),
        "cache_type": MetadataValue.text(str(result.get("cache_type"))),
        "cache_schema": MetadataValue.text(str(result.get("cache_schema"))),
        "duration_seconds": MetadataValue.float(float(result.get("duration_seconds") or 0)),
    }
    if result.get("status") == "success":
        counts = result.get("result") or {}
        metadata |= {
            "details": MetadataValue.json(counts),
            "tables": MetadataValue.json(tables),
            "records_synced": MetadataValue.int(sum(counts.values())),
        }
    else:
        metadata["error"] = MetadataValue.text(result.get("error") or "Unknown error")
    return metadata


def _failure(result: dict, metadata: dict[str, MetadataValue]) -> Failure:
    error = result.get("error") or "Unknown error"
    return Failure(
        description=f"PyAirbyte sync of {result.get('connector')} failed: {error}",
        metadata=metadata,
    )


def materialize_sync_result(context: AssetExecutionContext, result: dict) -> MaterializeResult:
    """The sync asset's outcome: its metadata, or `Failure` with the source's error."""
    metadata = sync_metadata(result)
    if result.get("status") != "success":
        raise _failure(result, metadata)
    context.log.info("Data synced to the PostgreSQL cache; ready for dbt")
    return MaterializeResult(metadata=metadata)
