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

Progress: while the sync runs, every SYNC_PROGRESS_SECONDS (default 10 s; 0: off) the records
read so far and the rate per stream go to `progress` (the module logger unless the caller, e.g.
a Dagster asset, passes `context.log.info`).

A connector process that exits before it says anything (it crashed at start-up: an import error,
a CDK too old for this Python) fails with `ConnectorStartupError`: exit code, traceback, log
file, and a hint to set `python:` in the YAML when the traceback is an import-time failure. That
is told apart from a failing `check`, which is the config's or the API's problem.
"""

from __future__ import annotations

import logging
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyairbyte import settings
from pyairbyte.errors import (
    ConnectorStartupError,
    PyAirbyteUtilsError,
    SyncError,
    SyncLimitExceededError,
)
from pyairbyte.utils.airbyte_env import connector_install_root
from pyairbyte.utils.airbyte_internals import (
    prepare_airbyte,
    runs_in_process,
    stream_connector_lines,
    wrap_source_messages,
)
from pyairbyte.utils.common_cache import DEFAULT_CACHE_SCHEMA, get_cache
from pyairbyte.utils.connector_config import ConnectorConfig, get_connector_by_name
from pyairbyte.utils.postgres_copy_cache.ledger import dead_letter_table, watch_source
from pyairbyte.utils.sync_limits import SyncBudget, run_bounded
from pyairbyte.utils.transient_errors import is_transient_error

if TYPE_CHECKING:
    from airbyte import Source
    from airbyte.caches import PostgresCache

__all__ = [
    "ConnectorStartupError",
    "SyncError",
    "SyncLimitExceededError",
    "build_source",
    "describe_error",
    "sync_connector",
]

log = logging.getLogger(__name__)


def build_source(connector: ConnectorConfig) -> Source:
    """A PyAirbyte source for a validated connector YAML (declarative in-process, or PyPI).

    A PyPI connector is installed if missing (with the YAML's `python:` interpreter), its stderr
    goes to `connector_stderr_log`, and it is started once for its spec, which PyAirbyte keeps
    for `check`: a connector that cannot start fails here, with `ConnectorStartupError`, before
    anything blames its config.
    """
    prepare_airbyte()  # once per process: environment, version guard, manifest state, ...
    source = _new_source(connector)
    if runs_in_process(source.executor):
        return source  # a manifest source: no process, its errors are exceptions
    _capture_connector_stderr(source, connector_stderr_log(connector.name))
    try:
        _ = source.config_spec  # runs `spec` once; PyAirbyte keeps it for check()
    except Exception as exc:
        startup = startup_error(exc)
        if startup is not None:
            raise startup from None
        raise
    return source


def _new_source(connector: ConnectorConfig) -> Source:
    import airbyte as ab

    if connector.is_declarative:
        # Incremental manifest streams resume from the state stored in the cache (the state
        # patch is part of prepare_airbyte).
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
        use_python=_connector_interpreter(connector),
    )


def connector_stderr_log(connector_name: str) -> Path:
    """Where a connector process's stderr (its traceback, if it crashes) is written."""
    return settings.project_dir() / "logs" / "airbyte" / f"{connector_name}-stderr.log"


def _connector_interpreter(connector: ConnectorConfig) -> Path | None:
    """The YAML's `python:` as an installed interpreter (None: the platform's own Python).

    A connector venv made with another Python than the one asked for (the YAML's `python:` was
    added, changed or removed) is removed, so that PyAirbyte installs the connector again.
    """
    interpreter = None
    wanted = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if connector.python is not None:
        from airbyte.constants import NO_UV  # what PyAirbyte's venv executor reads

        from pyairbyte.utils.interpreters import interpreter_minor, resolve_python

        interpreter = resolve_python(connector.python, connector.path)
        wanted = interpreter_minor(interpreter)
        if NO_UV:
            raise SyncError(
                f"{connector.path}: field 'python': PyAirbyte only honours an interpreter when "
                "it installs with uv, and AIRBYTE_NO_UV is set or uv is not on PATH. Fix: "
                "install uv in the project's venv (it is a dependency) and unset AIRBYTE_NO_UV"
            )
    venv = connector_install_root() / f".venv-{connector.name}"
    have = _venv_minor(venv)
    if have is not None and have != wanted:
        log.info("%s is a Python %s venv, not %s: reinstalling", venv, have, wanted)
        shutil.rmtree(venv, ignore_errors=True)
    return interpreter


def _venv_minor(venv: Path) -> str | None:
    """The X.Y a venv was made with, from its pyvenv.cfg (venv writes `version`, uv
    `version_info`)."""
    try:
        text = (venv / "pyvenv.cfg").read_text()
    except OSError:
        return None
    match = re.search(r"^version(?:_info)?\s*=\s*(\d+\.\d+)", text, re.MULTILINE)
    return match.group(1) if match else None


def _capture_connector_stderr(source: Source, log_path: Path) -> None:
    """Send a connector process's stderr to `log_path` (airbyte 0.71.3 lets it through to ours),
    and turn an exit before its first Airbyte message into `ConnectorStartupError`.

    A connector that crashes at start-up writes its traceback there, and PyAirbyte's error only
    says "Connector failed"; the start-up error carries the file's last lines.
    """
    from airbyte import exceptions as ab_exc

    executor = source.executor

    def execute(args: list[str], *, stdin: Any = None, suppress_stderr: bool = False):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        said_anything = False
        try:
            with (
                log_path.open("a", encoding="utf-8") as log_file,
                stream_connector_lines(executor, args, stdin=stdin, log_file=log_file) as lines,
            ):
                for line in lines:
                    said_anything = said_anything or line.lstrip().startswith("{")
                    yield line
        except ab_exc.AirbyteSubprocessFailedError as exc:
            if said_anything or exc.exit_code is None:
                raise
            raise _startup_error(source.name, args, exc.exit_code, log_path) from exc

    executor.execute = execute


# The last traceback line of a failure while the connector's modules are imported.
_IMPORT_FAILURE = re.compile(
    r"^(ImportError|ModuleNotFoundError|SyntaxError|ValueError: mutable default .* not allowed)"
)


def _startup_error(name: str, args: list[str], exit_code: int, log_path: Path):
    traceback = _connector_log_tail(log_path, lines=15)
    last_line = traceback.strip().splitlines()[-1] if traceback.strip() else ""
    import_failure = bool(_IMPORT_FAILURE.match(last_line))
    how = f"was killed by signal {-exit_code}" if exit_code < 0 else f"exited with code {exit_code}"
    parts = [
        f"connector {name} {how} at start-up, before it wrote any Airbyte message "
        f"(`{name} {args[0] if args else ''}`): it crashed before reading its config, so the "
        "config is not what failed."
    ]
    if traceback:
        parts.append(f"Its traceback (last lines of {log_path}):\n{traceback}")
    else:
        parts.append(f"It wrote nothing to stderr ({log_path}).")
    pyairbyte_log = _pyairbyte_log_file(name)
    if pyairbyte_log is not None:
        parts.append(f"PyAirbyte's log of the connector: {pyairbyte_log}")
    if import_failure:
        parts.append(
            "Hint: this is an import-time failure. Connectors that pin an old airbyte-cdk (0.x) "
            f"do not import on Python {sys.version_info[0]}.{sys.version_info[1]}: set an older "
            'interpreter for its venv in the connector YAML, e.g. `python: "3.10"`, '
            "or pin a newer connector version (pip_url / connector_version)."
        )
    else:
        parts.append(
            "Fix: run the connector's command by hand in its venv to see why it cannot start; "
            "reinstall it (delete its venv under the connectors directory) if it is broken."
        )
    return ConnectorStartupError(
        "\n".join(parts),
        exit_code=exit_code,
        stderr_log=log_path,
        import_failure=import_failure,
    )


def _pyairbyte_log_file(name: str) -> Path | None:
    for handler in logging.getLogger(f"airbyte.{name}").handlers:
        if isinstance(handler, logging.FileHandler):
            return Path(handler.baseFilename)
    return None


def startup_error(exc: BaseException | None) -> ConnectorStartupError | None:
    """The `ConnectorStartupError` inside a PyAirbyte error (it wraps what its executor raised)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ConnectorStartupError):
            return exc
        seen.add(id(exc))
        exc = getattr(exc, "original_exception", None) or exc.__cause__ or exc.__context__
    return None


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


def _is_lost_connection(error: BaseException) -> bool:
    """An OperationalError without a server-side SQLSTATE (or one of class 08): the connection
    went away. psycopg2 also files PostgreSQL's limits (54xxx) under OperationalError."""
    if type(error).__name__ != "OperationalError":
        return False
    code = getattr(getattr(error, "orig", None) or error, "pgcode", None)
    return code is None or code.startswith("08")


def _database_hint(exc: BaseException, cache: PostgresCache | None) -> str:
    """A first line naming the cache database when the failure is a lost connection to it, so
    the user knows it was PostgreSQL, not the source, that went away."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if not any(_is_lost_connection(e) for e in chain):
        return ""
    if cache is not None:
        where = f"{cache.database} on {cache.host}:{cache.port}"
    else:
        pg = settings.postgres_settings()
        where = f"{pg.dbname} on {pg.host}:{pg.port}"
    return f"lost the connection to the cache's PostgreSQL database {where}:\n"


def _budget(
    connector_name: str,
    max_seconds: float | None,
    max_records: int | None,
    progress: Callable[[str], None] | None,
) -> SyncBudget:
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
        progress=progress or log.info,
        progress_seconds=limits.progress_seconds,
    )


def _read(
    connector: ConnectorConfig,
    streams_to_sync: list[str] | None,
    cache: PostgresCache | None,
    budget: SyncBudget,
    outcome: dict[str, Any],
) -> None:
    """Build, check and read the source into the cache (on sync_limits' worker thread)."""
    source = build_source(connector)  # its stderr goes to connector_stderr_log(...)
    budget.policy = connector.data_policy
    watch_source(source, budget.ledger)  # lines counted, unparsable ones kept
    # Every message of discover, check and read passes the budget's checks.
    wrap_source_messages(source, budget.bounded_execute)
    streams = _select_streams(source, connector, streams_to_sync)
    log.info("checking %s", connector.name)
    source.check()
    cache = cache if cache is not None else get_cache("default")
    outcome["cache_type"] = type(cache).__name__
    outcome["cache_schema"] = cache.schema_name
    log.info("reading %s streams %s into %s", connector.name, streams, cache.schema_name)
    source.read(cache=cache)
    outcome["result"] = {stream: budget.stream_records.get(stream, 0) for stream in streams}
    outcome["tables"] = {
        stream: f"{cache.schema_name}.{cache.processor.get_sql_table_name(stream)}"
        for stream in streams
    }


def _add_accounting(outcome: dict[str, Any], budget: SyncBudget, connector_name: str) -> None:
    ledger = budget.ledger
    accounting = {stream: counts.as_dict() for stream, counts in ledger.streams.items()}
    outcome["accounting"] = accounting
    outcome["source_lines"] = ledger.lines  # every line the connector wrote, parsed or not
    outcome["records_rejected"] = sum(c["records_rejected"] for c in accounting.values())
    outcome["dead_letter_table"] = (
        f"{outcome.get('cache_schema')}.{dead_letter_table(connector_name)}"
    )
    for stream, counts in accounting.items():
        log.info(
            "stream %s: %d records emitted, %d landed, %d rejected (dead-letter table %s), "
            "%d values changed, %d duplicate keys resolved%s",
            stream or "(unknown)",
            counts["records_emitted"],
            counts["records_landed"],
            counts["records_rejected"],
            outcome["dead_letter_table"],
            counts["values_changed"],
            counts["duplicate_keys_resolved"],
            "".join(f"; {change}" for change in counts["schema_changes"]),
        )


def sync_connector(
    connector_name: str,
    streams_to_sync: list[str] | None = None,
    cache: PostgresCache | None = None,
    *,
    max_seconds: float | None = None,
    max_records: int | None = None,
    progress: Callable[[str], None] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Load the connector YAML, check the source, and read the streams into the cache.

    `max_seconds` / `max_records` bound the sync (0: no limit); unset, SYNC_MAX_SECONDS and
    SYNC_MAX_RECORDS apply. `progress` receives a line per SYNC_PROGRESS_SECONDS with the
    records and records/s of each stream (default: this module's logger).
    Returns {'status': 'success'|'error', 'result': {stream: records synced}, 'cache_type',
    'cache_schema', 'tables': {stream: schema.table}, 'duration_seconds', 'error',
    'transient'}: `transient` says whether the error may pass on a retry (an HTTP 5xx, a reset
    connection, a timeout; see transient_errors.py), False on success and for errors to fix.
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
        "transient": False,
    }
    stderr_log = connector_stderr_log(connector_name)
    stderr_log.unlink(missing_ok=True)
    budget = None
    try:
        connector = get_connector_by_name(connector_name)
        budget = _budget(connector_name, max_seconds, max_records, progress)
        budget.ledger.run_id = run_id
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
        startup = startup_error(exc)
        if startup is not None:  # the connector crashed starting: not a config or API error
            outcome["error"] = str(startup)
        else:
            outcome["error"] = _database_hint(exc, cache) + describe_error(exc)
            stderr_tail = _connector_log_tail(stderr_log)
            if stderr_tail and stderr_tail not in outcome["error"]:
                outcome["error"] += f"\nconnector stderr (last lines, {stderr_log}):\n{stderr_tail}"
            outcome["transient"] = is_transient_error(exc, outcome["error"])
    if budget is not None:
        _add_accounting(outcome, budget, connector_name)
    outcome["duration_seconds"] = round(time.monotonic() - started, 3)
    return outcome
