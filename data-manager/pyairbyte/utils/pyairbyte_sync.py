"""Sync one connector with PyAirbyte straight into the PostgreSQL cache (the guide's Pattern 1).

`sync_connector` never raises for a bad YAML or a failing source: like the guide, it returns a
result dict and the calling asset decides to raise. It is the one util with a result dict (the
guide's API); the errors it reports are those of `pyairbyte.errors` or the source's own.
Nothing is written to the database before the YAML is valid, the requested streams exist and
the source's `check` passes. A failed read leaves the tables of the previous successful sync as
they were (PyAirbyte loads into temporary tables and only then appends, swaps or merges).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from pyairbyte.errors import PyAirbyteUtilsError, SyncError
from pyairbyte.utils.airbyte_env import configure_airbyte_environment, connector_install_root
from pyairbyte.utils.common_cache import DEFAULT_CACHE_SCHEMA, get_cache
from pyairbyte.utils.connector_config import ConnectorConfig, get_connector_by_name

if TYPE_CHECKING:
    from airbyte import Source
    from airbyte.caches import PostgresCache

__all__ = ["SyncError", "build_source", "describe_error", "sync_connector"]

log = logging.getLogger(__name__)


def build_source(connector: ConnectorConfig) -> Source:
    """A PyAirbyte source for a validated connector YAML (declarative in-process, or PyPI)."""
    configure_airbyte_environment()
    import airbyte as ab

    if connector.is_declarative:
        # Incremental manifest streams resume from the state stored in the cache.
        from pyairbyte.utils.postgres_copy_cache import enable_declarative_state

        enable_declarative_state()
        return ab.get_source(
            connector.name,
            source_manifest=connector.source_manifest,
            config=connector.config,
        )
    return ab.get_source(
        connector.name,
        config=connector.config,
        pip_url=connector.pip_url,
        install_if_missing=True,
        install_root=connector_install_root(),
    )


def _select_streams(source: Source, connector: ConnectorConfig, requested: list[str] | None):
    available = source.get_available_streams()
    streams = list(requested or connector.streams or available)
    unknown = [s for s in streams if s not in available]
    if unknown:
        origin = "streams_to_sync" if requested else f"{connector.path}: field 'streams'"
        raise SyncError(
            f"{origin}: unknown stream(s) {', '.join(unknown)}; "
            f"{connector.name} offers: {', '.join(sorted(available))}"
        )
    source.select_streams(streams)
    return streams


def describe_error(exc: BaseException) -> str:
    """One readable message: the exception, plus the connector's own error when PyAirbyte has it.

    PyAirbyte wraps connector failures; the useful text (e.g. the HTTP status and body the source
    got) sits in `original_exception`, `log_text` or the exception's context fields.
    """
    parts = [f"{type(exc).__name__}: {exc}"]
    for attr in ("original_exception", "log_text", "context"):
        value = getattr(exc, attr, None)
        if value:
            text = str(value)
            if text and text not in parts[0]:
                parts.append(f"{attr}: {text[-2000:]}")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in " ".join(parts):
        parts.append(f"caused by {type(cause).__name__}: {cause}")
    return "\n".join(parts)


def sync_connector(
    connector_name: str,
    streams_to_sync: list[str] | None = None,
    cache: PostgresCache | None = None,
) -> dict[str, Any]:
    """Load the connector YAML, check the source, and read the streams into the cache.

    Returns {'status': 'success'|'error', 'result': {stream: records synced},
    'cache_type', 'cache_schema', 'tables': {stream: schema.table}, 'duration_seconds',
    'error'}.
    """
    started = time.monotonic()
    outcome: dict[str, Any] = {
        "status": "error",
        "connector": connector_name,
        "result": {},
        "tables": {},
        "cache_type": type(cache).__name__ if cache is not None else "PostgresCache",
        "cache_schema": getattr(cache, "schema_name", DEFAULT_CACHE_SCHEMA),
        "error": None,
    }
    try:
        connector = get_connector_by_name(connector_name)
        source = build_source(connector)
        streams = _select_streams(source, connector, streams_to_sync)
        log.info("checking %s", connector.name)
        source.check()
        cache = cache if cache is not None else get_cache("default")
        outcome["cache_type"] = type(cache).__name__
        outcome["cache_schema"] = cache.schema_name
        log.info("reading %s streams %s into %s", connector.name, streams, cache.schema_name)
        read_result = source.read(cache=cache)
        counts = read_result._progress_tracker.stream_read_counts  # per-stream, this run only
        outcome["result"] = {stream: int(counts.get(stream, 0)) for stream in streams}
        outcome["tables"] = {
            stream: f"{cache.schema_name}.{cache.processor.get_sql_table_name(stream)}"
            for stream in streams
        }
        outcome["status"] = "success"
    except PyAirbyteUtilsError as exc:  # ours (bad YAML, unknown stream, bad setting, ...)
        outcome["error"] = str(exc)
    except Exception as exc:  # the source's or PyAirbyte's error, reported to the asset
        log.exception("sync of %s failed", connector_name)
        outcome["error"] = describe_error(exc)
    outcome["duration_seconds"] = round(time.monotonic() - started, 3)
    return outcome
