"""Sync one connector with PyAirbyte straight into the PostgreSQL cache (the guide's Pattern 1).

`sync_connector` never raises for a bad YAML or a failing source: like the guide, it returns a
result dict and the calling asset decides to raise. It is the one util with a result dict (the
guide's API); the errors it reports are those of `pyairbyte.errors` or the source's own.
Nothing is written to the database before the YAML is valid, the requested streams exist and
the source's `check` passes. A failed read leaves the tables of the previous successful sync as
they were (PyAirbyte loads into temporary tables and only then appends, swaps or merges).

Every sync is bounded (sync_limits.py): by SYNC_MAX_SECONDS (default 3600 s) and
SYNC_MAX_RECORDS (default 0, no limit), or the `max_seconds` / `max_records` arguments. Past a
limit the sync fails with a message naming the limit and how to raise it, the streams still
being read are rolled back, and its staging files are removed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyairbyte import settings
from pyairbyte.errors import PyAirbyteUtilsError, SyncError, SyncLimitExceededError
from pyairbyte.utils.airbyte_env import configure_airbyte_environment, connector_install_root
from pyairbyte.utils.common_cache import DEFAULT_CACHE_SCHEMA, get_cache
from pyairbyte.utils.connector_config import ConnectorConfig, get_connector_by_name
from pyairbyte.utils.sync_limits import SyncBudget, run_bounded

if TYPE_CHECKING:
    from airbyte import Source
    from airbyte.caches import PostgresCache

__all__ = [
    "SyncError",
    "SyncLimitExceededError",
    "build_source",
    "describe_error",
    "sync_connector",
]

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


def _capture_connector_stderr(source: Source, log_path: Path) -> None:
    """Send a connector process's stderr to `log_path` (airbyte 0.71.3 lets it through to ours).

    A connector that crashes at start-up writes its traceback there, and PyAirbyte's error only
    says "Connector failed"; `sync_connector` adds the file's last lines to its error.
    """
    from airbyte._executors.base import _stream_from_subprocess
    from airbyte._executors.declarative import DeclarativeExecutor

    executor = source.executor
    if isinstance(executor, DeclarativeExecutor):
        return  # in-process: its errors are exceptions

    def execute(args: list[str], *, stdin: Any = None, suppress_stderr: bool = False):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [*executor._cli, *executor.map_cli_args(args)]  # noqa: SLF001
        with (
            log_path.open("a", encoding="utf-8") as log_file,
            _stream_from_subprocess(command, stdin=stdin, log_file=log_file) as lines,
        ):
            yield from lines

    executor.execute = execute


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


def _connector_log_tail(log_file: Any, lines: int = 20) -> str:
    """The last lines of a connector process's log: its stderr, where a crash's traceback goes
    (PyAirbyte's error only names the file)."""
    if not log_file:
        return ""
    try:
        text = Path(log_file).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])[-2000:]


def describe_error(exc: BaseException) -> str:
    """One readable message: the exception, plus the connector's own error when PyAirbyte has it.

    PyAirbyte wraps connector failures; the useful text (e.g. the HTTP status and body the source
    got) sits in `original_exception`, `log_text` or the exception's context fields, and a
    connector process's own error (a crash at start-up) in its log file.
    """
    parts = [f"{type(exc).__name__}: {exc}"]
    for attr in ("original_exception", "log_text", "context"):
        value = getattr(exc, attr, None)
        if value:
            text = str(value)
            if text and text not in parts[0]:
                parts.append(f"{attr}: {text[-2000:]}")
    log_tail = _connector_log_tail(getattr(exc, "log_file", None))
    if log_tail and log_tail not in " ".join(parts):
        parts.append(f"connector log (last lines):\n{log_tail}")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in " ".join(parts):
        parts.append(f"caused by {type(cause).__name__}: {cause}")
    return "\n".join(parts)


def _database_hint(exc: BaseException, cache: PostgresCache | None) -> str:
    """A first line naming the cache database when the failure is a lost connection to it, so
    the user knows it was PostgreSQL, not the source, that went away."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if not any(type(e).__name__ == "OperationalError" for e in chain):
        return ""
    if cache is not None:
        where = f"{cache.database} on {cache.host}:{cache.port}"
    else:
        pg = settings.postgres_settings()
        where = f"{pg.dbname} on {pg.host}:{pg.port}"
    return f"lost the connection to the cache's PostgreSQL database {where}:\n"


def _budget(connector_name: str, max_seconds: float | None, max_records: int | None) -> SyncBudget:
    limits = settings.sync_limit_settings()
    if max_seconds is not None and max_seconds < 0 or max_records is not None and max_records < 0:
        raise SyncError(
            f"sync_connector({connector_name!r}): max_seconds and max_records must be >= 0 "
            "(0 means no limit)"
        )
    return SyncBudget(
        connector_name,
        max_seconds=limits.max_seconds if max_seconds is None else max_seconds,
        max_records=limits.max_records if max_records is None else max_records,
        seconds_setting="SYNC_MAX_SECONDS" if max_seconds is None else "max_seconds=",
        records_setting="SYNC_MAX_RECORDS" if max_records is None else "max_records=",
    )


def _read(
    connector: ConnectorConfig,
    streams_to_sync: list[str] | None,
    cache: PostgresCache | None,
    budget: SyncBudget,
    outcome: dict[str, Any],
) -> None:
    """Build, check and read the source into the cache (on sync_limits' worker thread)."""
    source = build_source(connector)
    _capture_connector_stderr(source, outcome["_stderr_log"])
    # Every message of discover, check and read passes the budget's checks.
    source._execute = budget.bounded_execute(source._execute)  # noqa: SLF001
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


def sync_connector(
    connector_name: str,
    streams_to_sync: list[str] | None = None,
    cache: PostgresCache | None = None,
    *,
    max_seconds: float | None = None,
    max_records: int | None = None,
) -> dict[str, Any]:
    """Load the connector YAML, check the source, and read the streams into the cache.

    `max_seconds` / `max_records` bound the sync (0: no limit); unset, SYNC_MAX_SECONDS and
    SYNC_MAX_RECORDS apply. Returns {'status': 'success'|'error', 'result': {stream: records
    synced}, 'cache_type', 'cache_schema', 'tables': {stream: schema.table},
    'duration_seconds', 'error'}.
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
    stderr_log = settings.project_dir() / "logs" / "airbyte" / f"{connector_name}-stderr.log"
    outcome["_stderr_log"] = stderr_log
    stderr_log.unlink(missing_ok=True)
    try:
        connector = get_connector_by_name(connector_name)
        budget = _budget(connector_name, max_seconds, max_records)
        run_bounded(
            budget,
            lambda: _read(connector, streams_to_sync, cache, budget, outcome),
            grace_seconds=settings.sync_limit_settings().stop_grace_seconds,
        )
        outcome["status"] = "success"
    except SyncLimitExceededError as exc:
        log.error("%s", exc)
        outcome["error"] = str(exc)
    except PyAirbyteUtilsError as exc:  # ours (bad YAML, unknown stream, bad setting, ...)
        outcome["error"] = str(exc)
    except Exception as exc:  # the source's or PyAirbyte's error, reported to the asset
        log.exception("sync of %s failed", connector_name)
        outcome["error"] = _database_hint(exc, cache) + describe_error(exc)
        stderr_tail = _connector_log_tail(stderr_log)
        if stderr_tail and stderr_tail not in outcome["error"]:
            outcome["error"] += f"\nconnector stderr (last lines, {stderr_log}):\n{stderr_tail}"
    outcome.pop("_stderr_log", None)
    outcome["duration_seconds"] = round(time.monotonic() - started, 3)
    return outcome
