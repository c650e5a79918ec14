"""Turning a `sync_connector` result dict into asset metadata, or a failed asset.

Every failure of a sync step is a `dagster.Failure` whose `allow_retries` says whether the
error is transient (`pyairbyte.utils.transient_errors`): the step's retry policy, from the
connector YAML's `retry:`, then retries an HTTP 503 and fails a 401 at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
)

from dagster_code.lib.cache_tables import CacheTableError, table_stats
from pyairbyte.utils.transient_errors import is_transient_error

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
        metadata["transient"] = MetadataValue.bool(bool(result.get("transient")))
    return metadata


def _failure(result: dict, metadata: dict[str, MetadataValue]) -> Failure:
    error = result.get("error") or "Unknown error"
    return Failure(
        description=f"PyAirbyte sync of {result.get('connector')} failed: {error}",
        metadata=metadata,
        # The retry policy (the YAML's retry:) may retry only an error that can pass next time.
        allow_retries=bool(result.get("transient")),
    )


@contextmanager
def retryable_failure() -> Iterator[None]:
    """Any other exception of the sync step as a `Failure` that is retried only if transient
    (an unexpected bug must not be retried as if the source had hiccupped)."""
    try:
        yield
    except Failure:
        raise
    except Exception as exc:
        raise Failure(
            description=f"sync step failed: {type(exc).__name__}: {exc}",
            allow_retries=is_transient_error(exc),
        ) from exc


def sync_failure(result: dict) -> Failure:
    """A failed sync as `dagster.Failure`: the source's error, with the guide's metadata."""
    return _failure(result, sync_metadata(result))


def accounting_metadata(
    context: AssetExecutionContext, stream: str, counts: dict | None, result: dict
) -> dict[str, MetadataValue]:
    """The stream's record accounting (ledger.py) as metadata, and in the run's log what was
    rejected, changed or added to the table: nothing the cache did to the data goes unsaid."""
    if not counts:
        return {}
    if counts["records_rejected"]:
        context.log.warning(
            f"stream {stream}: {counts['records_rejected']} record(s) rejected, kept in "
            f"{result.get('dead_letter_table')} with this run's id"
        )
    if counts["values_changed"]:
        context.log.warning(
            f"stream {stream}: {counts['values_changed']} value(s) changed, each recorded in "
            "its row's _airbyte_meta.changes"
        )
    if counts["duplicate_keys_resolved"]:
        context.log.info(
            f"stream {stream}: {counts['duplicate_keys_resolved']} record(s) replaced by a later "
            "record with the same primary key in the same sync (the last one emitted is kept)"
        )
    for change in counts["schema_changes"]:
        context.log.warning(f"stream {stream}: schema change: {change}")
    metadata = {
        name: MetadataValue.int(int(counts[name] or 0))
        for name in (
            "records_emitted",
            "records_landed",
            "records_rejected",
            "values_changed",
            "duplicate_keys_resolved",
        )
    }
    if counts["schema_changes"]:
        metadata["schema_changes"] = MetadataValue.json(counts["schema_changes"])
    return metadata


def table_results(
    context: AssetExecutionContext, result: dict, keys: Mapping[str, AssetKey]
) -> Iterator[MaterializeResult]:
    """One `MaterializeResult` per synced stream's cache table (`keys`: stream -> asset key),
    with Dagster's standard table metadata read from the table after the sync; `Failure` when
    the sync failed. The rows the table holds and the rows this run synced differ whenever a
    sync appends or merges."""
    if result.get("status") != "success":
        raise sync_failure(result)
    tables: dict = result.get("tables") or {}
    counts: dict = result.get("result") or {}
    try:
        stats = table_stats([tables[stream] for stream in keys if stream in tables])
    except CacheTableError as exc:
        raise Failure(
            description=f"{result.get('connector')} synced, but its tables cannot be read: {exc}",
            metadata={"tables": MetadataValue.json(tables)},
            allow_retries=is_transient_error(exc),
        ) from exc
    duration = MetadataValue.float(float(result.get("duration_seconds") or 0))
    accounting: dict = result.get("accounting") or {}
    for stream, key in keys.items():
        table = tables.get(stream, "")
        described = stats.get(table)
        if described is None:
            context.log.warning(f"stream {stream}: no cache table {table} after the sync")
        columns = [TableColumn(name, kind) for name, kind in described.columns] if described else []
        yield MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/table_name": MetadataValue.text(table),
                "dagster/row_count": MetadataValue.int(described.row_count if described else 0),
                "dagster/column_schema": MetadataValue.table_schema(TableSchema(columns=columns)),
                "records_synced": MetadataValue.int(int(counts.get(stream) or 0)),
                "duration_seconds": duration,
                **accounting_metadata(context, stream, accounting.get(stream), result),
            },
        )
    context.log.info("Data synced to the PostgreSQL cache; ready for dbt")


def materialize_sync_result(context: AssetExecutionContext, result: dict) -> MaterializeResult:
    """A single-asset sync's outcome (sweden_sync): its metadata, or `Failure` with the source's
    error. Connector locations materialize one asset per table instead (`table_results`)."""
    metadata = sync_metadata(result)
    if result.get("status") != "success":
        raise _failure(result, metadata)
    context.log.info("Data synced to the PostgreSQL cache; ready for dbt")
    return MaterializeResult(metadata=metadata)
