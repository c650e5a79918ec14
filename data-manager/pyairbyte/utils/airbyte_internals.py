"""The one module that uses private PyAirbyte (airbyte==0.71.3) and Airbyte CDK internals.

Every other module uses PyAirbyte's public API, or the names here. A PyAirbyte upgrade means:
re-check each item below against the new release, run tests/pyairbyte/utils/
test_airbyte_internals.py (it drives each one through the real library), and raise
SUPPORTED_AIRBYTE_VERSION. Importing this module is cheap: `airbyte` is imported on first use.

Private APIs wrapped here, and what upstream would make each unnecessary:

1. `ConnectorBase._print_info_message` (patched, `unparsable_lines_to`): the reader hands it every
   line it could not parse, which it logs and skips; we keep the line for the dead-letter table.
   No upstream issue found; public alternative would be a callback (or a counted, reported
   error) on `Source.read` for lines that are not Airbyte messages.
2. `DeclarativeExecutor.execute` (patched) and its `_manifest_dict`, `_config_dict`,
   `_config_from_args`: manifest sources get the stored state (0.71.3 drops `--state`).
   Upstream: airbytehq/PyAirbyte PR #1146 and its follow-on PR #1164 (open: pass `--state` and
   `--catalog` to declarative sources).
3. The CDK's `ConcurrentDeclarativeSource._concurrent_source._queue` and `._threadpool`: wake a
   manifest read that waits on its source, and stop the worker threads of an abandoned read.
   No upstream issue found; public alternative would be a cancel/close method on the CDK's
   `ConcurrentSource` that stops its thread pool.
4. `airbyte._executors.base._stream_from_subprocess`, `Executor._cli` and the class
   `DeclarativeExecutor`: a connector process's stderr goes to our log file. Upstream:
   airbytehq/PyAirbyte PR #1021 (closed; it threaded a `log_file` through `Source` to the
   executor for the MCP read tools, issue #1019).
5. `ConnectorBase._execute` (wrapped per source, `wrap_source_messages`): every message passes the
   sync's budget (time and record limits). No upstream issue found; public alternative would be a
   per-message callback, or time/record limits, on `Source.read`.
6. `airbyte._processors.sql.postgres.PostgresSqlProcessor` and its private hooks (`_write_files_
   to_new_table`, `_swap_temp_table_with_final_table`, `_append_temp_table_to_final_table`,
   `_emulated_merge_temp_table_to_final_table`, `_ensure_final_table_exists`, `_table_exists`,
   `_add_missing_columns_to_table`, `_add_column_to_table`, `_execute_sql`,
   `_init_connection_settings`) and helpers (`_quote_identifier`, `_fully_qualified`,
   `_create_table`, `_invalidate_table_cache`, `_get_temp_table_name`,
   `_ensure_compatible_table_schema`, `_get_sql_column_definitions`): `PostgresProcessorHooks`
   maps each hook onto a public-named method, so the COPY processor names none of them.
   No upstream issue found; public alternative would be a documented processor extension API
   (`SqlProcessorBase` is public, its hooks and the Postgres subclass are not).
7. `airbyte._writers.jsonl.JsonlWriter`, `airbyte._batch_handles.BatchHandle` and the writer's
   `_open_new_file`, `_write_record_dict`, `_flush_active_batch`, `_new_batch`,
   `_active_batches`, `_cache_dir`: `JsonlWriterHooks`. No upstream issue found; public
   alternative would be a public file-writer base class with a "batch closed" callback.
8. `CacheBase._write_airbyte_message_stream` and `CacheBase._sql_processor_class`:
   `PostgresCacheHooks`. No upstream issue found; public alternative would be a cache option
   for the processor class and a hook around a write.

Public equivalents used elsewhere instead of internals: `airbyte.constants.NO_UV` (was read from
`airbyte._executors.python`); the message iterator type is not needed (annotated `Any`).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from pyairbyte.errors import UnsupportedAirbyteVersionError

# Also JsonlWriterHooks, PostgresCacheHooks and PostgresProcessorHooks (made on first access).
__all__ = [
    "SUPPORTED_AIRBYTE_VERSION",
    "UnsupportedAirbyteVersionError",
    "check_airbyte_version",
    "prepare_airbyte",
    "runs_in_process",
    "stream_connector_lines",
    "unparsable_lines_to",
    "wake_declarative_reads",
    "wrap_source_messages",
]

log = logging.getLogger(__name__)

SUPPORTED_AIRBYTE_VERSION = "0.71.3"


# ---- the version guard ---------------------------------------------------------------------------


def installed_airbyte_version() -> str | None:
    try:
        return version("airbyte")
    except PackageNotFoundError:
        return None


def check_airbyte_version() -> None:
    """Raise `UnsupportedAirbyteVersionError` unless airbyte==0.71.3 is installed: the internals
    above change between releases without notice, and another version could silently lose data
    instead of failing."""
    installed = installed_airbyte_version()
    if installed != SUPPORTED_AIRBYTE_VERSION:
        found = "airbyte is not installed" if installed is None else f"airbyte {installed} is"
        raise UnsupportedAirbyteVersionError(
            f"pyairbyte.utils supports airbyte=={SUPPORTED_AIRBYTE_VERSION}, but {found}. "
            f"{__name__} patches and subclasses PyAirbyte internals (listed in its docstring). "
            f"Fix: pin airbyte=={SUPPORTED_AIRBYTE_VERSION} in pyproject.toml, or re-verify "
            f"these internals against the new release (tests/pyairbyte/utils/"
            f"test_airbyte_internals.py) and update SUPPORTED_AIRBYTE_VERSION."
        )


# ---- the process's one set-up --------------------------------------------------------------------


_prepared = False
_PATCHED = "_pyairbyte_utils_patch"  # marks our replacements, so none is applied twice
_lock = threading.RLock()  # the set-up and the lazy classes are made once, whichever thread asks


def prepare_airbyte() -> None:
    """Once per process, before PyAirbyte reads anything: the environment (offline mode, files
    under the project directory), the version guard, and the two patches (manifest sources get
    their state; unparsable lines can be captured). Later calls return at once; a failed guard
    patches nothing and raises again on the next call."""
    global _prepared
    if _prepared:
        return
    with _lock:
        if _prepared:
            return
        from pyairbyte.utils.airbyte_env import configure_airbyte_environment

        configure_airbyte_environment()
        check_airbyte_version()
        _pass_state_to_declarative_sources()
        _route_unparsable_lines()
        _prepared = True


# ---- 1. lines the reader could not parse ---------------------------------------------------------

_line_sink: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "pyairbyte_unparsable_line_sink", default=None
)


@contextmanager
def unparsable_lines_to(sink: Callable[[str], None]) -> Iterator[None]:
    """While inside, each line PyAirbyte's reader fails to parse in this context (the reader
    parses in the thread that consumes the messages) is also given to `sink`."""
    prepare_airbyte()
    token = _line_sink.set(sink)
    try:
        yield
    finally:
        _line_sink.reset(token)


def _route_unparsable_lines() -> None:
    from airbyte._connector_base import ConnectorBase

    if getattr(ConnectorBase._print_info_message, _PATCHED, False):
        return  # a second wrapper would hand every line over twice
    print_info = ConnectorBase._print_info_message

    def print_info_message(self: Any, message: str) -> None:
        sink = _line_sink.get()
        if sink is not None:
            sink(message)
        print_info(self, message)

    setattr(print_info_message, _PATCHED, True)
    ConnectorBase._print_info_message = print_info_message


# ---- 2 and 3. manifest sources: stored state, and stopping a read ------------------------------

# The CDK sources being read in this process (for wake_declarative_reads).
_reading: weakref.WeakSet[Any] = weakref.WeakSet()
_REQUIRED_EXECUTOR_ATTRIBUTES = ("_config_from_args", "map_cli_args", "execute")


class _ReadAbandoned(Exception):
    """Raised in a CDK worker thread that tries to queue a record for a read that was stopped."""


def _read_queue(source: Any) -> Any:
    return getattr(getattr(source, "_concurrent_source", None), "_queue", None)


def wake_declarative_reads() -> None:
    """Wake every manifest read loop of this process that waits for its source.

    The CDK's worker threads put records in a queue (max 10,000) that the read loop takes from;
    a loop waiting on a source that never answers waits forever. A log message put in the queue
    hands the loop something, so the caller's checks run and it can stop."""
    if not _reading:
        return
    from airbyte_cdk.models import AirbyteLogMessage, AirbyteMessage, Level, Type

    message = AirbyteMessage(
        type=Type.LOG,
        log=AirbyteLogMessage(level=Level.INFO, message="pyairbyte: checking the sync's limits"),
    )
    for source in list(_reading):
        queue = _read_queue(source)
        if queue is not None:
            with suppress(Exception):
                queue.put_nowait(message)  # a full queue: the loop is not waiting anyway


def _stop_threads(source: Any) -> None:
    """Stop the CDK worker threads of a read that ended early (a limit, a load error).

    Left alone, a paginator that never ends keeps requesting until the queue is full, then blocks
    forever, and the process can never exit (ThreadPoolExecutor threads are joined at exit). So:
    cancel the pending work, make further puts raise, and empty the queue to wake the workers
    blocked on it; each finishes its current request and stops."""
    concurrent_source = getattr(source, "_concurrent_source", None)
    queue = _read_queue(source)
    if concurrent_source is None or queue is None:
        return

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise _ReadAbandoned("the read of this source was stopped")

    queue.put = refuse
    queue.put_nowait = refuse
    with suppress(Exception):
        concurrent_source._threadpool._threadpool.shutdown(wait=False, cancel_futures=True)
    with suppress(Exception):
        while True:
            queue.get_nowait()


def _state_path_from_args(args: list[str]) -> str | None:
    if "--state" not in args:
        return None
    index = args.index("--state") + 1
    return args[index] if index < len(args) else None


def _pass_state_to_declarative_sources() -> None:
    """Replace `DeclarativeExecutor.execute` (class-level: every manifest source of the process).

    In 0.71.3, `Source.read()` runs `read --config --catalog --state`, but the executor builds
    `ConcurrentDeclarativeSource(config=..., source_config=manifest)` without `state=`, and the
    CDK (7.x) only takes state in that constructor: every run started from the beginning and an
    append stream doubled. The replacement does what 0.71.3's `execute` does (config from
    `--config` over the injected config, `AirbyteEntrypoint`, the mapped CLI args) and passes the
    `--state` file, read with the CDK's own `read_state`. Without `--state` (spec, check,
    discover) the original runs. It also registers the read for `wake_declarative_reads` and
    stops its threads when the read ends early (`_stop_threads`).
    """
    from airbyte._executors.declarative import DeclarativeExecutor
    from airbyte_cdk.entrypoint import AirbyteEntrypoint
    from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
        ConcurrentDeclarativeSource,
    )

    if getattr(DeclarativeExecutor.execute, _PATCHED, False):
        return
    missing = [a for a in _REQUIRED_EXECUTOR_ATTRIBUTES if not hasattr(DeclarativeExecutor, a)]
    if missing:
        raise UnsupportedAirbyteVersionError(
            f"DeclarativeExecutor lacks {', '.join(missing)}; the declarative-state patch in "
            f"{__name__} was written for airbyte {SUPPORTED_AIRBYTE_VERSION} and must be "
            "re-checked."
        )
    original_execute = DeclarativeExecutor.execute

    def execute(
        self: Any,
        args: list[str],
        *,
        stdin: Any = None,
        suppress_stderr: bool = False,
    ) -> Iterator[str]:
        state_path = _state_path_from_args(args)
        if state_path is None:
            yield from original_execute(self, args, stdin=stdin, suppress_stderr=suppress_stderr)
            return
        source = ConcurrentDeclarativeSource(
            config={**self._config_dict, **self._config_from_args(args)},
            state=ConcurrentDeclarativeSource.read_state(state_path),
            source_config=self._manifest_dict,
        )
        entrypoint = AirbyteEntrypoint(source)
        _reading.add(source)
        finished = False
        try:
            yield from entrypoint.run(entrypoint.parse_args(self.map_cli_args(args)))
            finished = True
        finally:
            _reading.discard(source)
            if not finished:
                _stop_threads(source)

    setattr(execute, _PATCHED, True)
    execute.__doc__ = "DeclarativeExecutor.execute, passing --state to the source (see module)."
    DeclarativeExecutor.execute = execute


# ---- 4 and 5. connector processes and a source's messages ------------------------------------


def runs_in_process(executor: Any) -> bool:
    """True for a manifest source's executor: it runs in this process, no subprocess, no stderr."""
    from airbyte._executors.declarative import DeclarativeExecutor

    return isinstance(executor, DeclarativeExecutor)


@contextmanager
def stream_connector_lines(
    executor: Any, args: list[str], *, stdin: Any = None, log_file: IO[str]
) -> Iterator[Iterator[str]]:
    """The lines a connector process writes to stdout for `args`, as its executor's own `execute`
    runs it, with its stderr written to `log_file` instead of ours."""
    from airbyte._executors.base import _stream_from_subprocess

    command = [*executor._cli, *executor.map_cli_args(args)]
    with _stream_from_subprocess(command, stdin=stdin, log_file=log_file) as lines:
        yield lines


def wrap_source_messages(
    source: Any, wrapper: Callable[[Callable[..., Iterator[Any]]], Callable[..., Iterator[Any]]]
) -> None:
    """Route every message of the source's discover, check and read through `wrapper(execute)`
    (PyAirbyte parses the connector's lines into messages in `_execute`)."""
    source._execute = wrapper(source._execute)


# ---- 6, 7 and 8. base classes for the COPY cache, mapping private hooks to public names --------


def _processor_hooks() -> type:
    from airbyte._processors.sql.postgres import PostgresSqlProcessor

    class PostgresProcessorHooks(PostgresSqlProcessor):
        """PyAirbyte's Postgres processor, its private hooks mapped onto public-named methods.

        PyAirbyte calls the private name; it calls ours, whose default is the stock behaviour.
        A subclass overrides the public names only.
        """

        # Hooks PyAirbyte calls -> ours.
        def _write_files_to_new_table(self, files: list[Path], stream_name: str, batch_id: str):
            return self.load_files(files, stream_name, batch_id)

        def _swap_temp_table_with_final_table(
            self, stream_name: str, temp_table_name: str, final_table_name: str
        ) -> None:
            self.replace_final_table(stream_name, temp_table_name, final_table_name)

        def _append_temp_table_to_final_table(
            self, temp_table_name: str, final_table_name: str, stream_name: str
        ) -> None:
            self.append_to_final_table(stream_name, temp_table_name, final_table_name)

        def _emulated_merge_temp_table_to_final_table(
            self, stream_name: str, temp_table_name: str, final_table_name: str
        ) -> None:
            self.merge_into_final_table(stream_name, temp_table_name, final_table_name)

        def _ensure_final_table_exists(self, stream_name: str, *, create_if_missing: bool = True):
            return self.ensure_final_table(stream_name, create_if_missing=create_if_missing)

        def _table_exists(self, table_name: str) -> bool:
            return self.table_exists(table_name)

        def _add_missing_columns_to_table(self, stream_name: str, table_name: str) -> None:
            self.add_missing_columns(stream_name, table_name)

        def _add_column_to_table(self, table: Any, column_name: str, column_type: Any) -> None:
            self.add_column(table, column_name, column_type)

        def _execute_sql(self, sql: Any) -> Any:
            return self.execute_sql(sql)

        def _init_connection_settings(self, connection: Any) -> None:
            self.init_connection(connection)

        # Ours, stock behaviour unless overridden.
        def load_files(self, files: list[Path], stream_name: str, batch_id: str) -> str:
            """Load staged files into a new loading table; return its name."""
            return super()._write_files_to_new_table(files, stream_name, batch_id)

        def replace_final_table(
            self, stream_name: str, temp_table_name: str, final_table_name: str
        ) -> None:
            super()._swap_temp_table_with_final_table(
                stream_name, temp_table_name, final_table_name
            )

        def append_to_final_table(
            self, stream_name: str, temp_table_name: str, final_table_name: str
        ) -> None:
            super()._append_temp_table_to_final_table(
                temp_table_name, final_table_name, stream_name
            )

        def merge_into_final_table(
            self, stream_name: str, temp_table_name: str, final_table_name: str
        ) -> None:
            super()._emulated_merge_temp_table_to_final_table(
                stream_name, temp_table_name, final_table_name
            )

        def ensure_final_table(self, stream_name: str, *, create_if_missing: bool = True) -> str:
            return super()._ensure_final_table_exists(
                stream_name, create_if_missing=create_if_missing
            )

        def table_exists(self, table_name: str) -> bool:
            return super()._table_exists(table_name)

        def add_missing_columns(self, stream_name: str, table_name: str) -> None:
            super()._add_missing_columns_to_table(stream_name, table_name)

        def add_column(self, table: Any, column_name: str, column_type: Any) -> None:
            super()._add_column_to_table(table, column_name, column_type)

        def execute_sql(self, sql: Any) -> Any:
            return super()._execute_sql(sql)

        def init_connection(self, connection: Any) -> None:
            super()._init_connection_settings(connection)

        # PyAirbyte's private helpers, under public names.
        def quote_identifier(self, identifier: str) -> str:
            return self._quote_identifier(identifier)

        def fully_qualified(self, table_name: str) -> str:
            return self._fully_qualified(table_name)

        def create_table(self, table_name: str, column_definition_sql: str) -> None:
            self._create_table(table_name, column_definition_sql)

        def invalidate_table_cache(self, table_name: str) -> None:
            self._invalidate_table_cache(table_name)

        def temp_table_name(self, stream_name: str, batch_id: str | None = None) -> str:
            return self._get_temp_table_name(stream_name, batch_id)

        def ensure_compatible_table_schema(self, stream_name: str, table_name: str) -> None:
            self._ensure_compatible_table_schema(stream_name, table_name)

        def sql_column_definitions(self, stream_name: str) -> dict[str, Any]:
            return self._get_sql_column_definitions(stream_name)

    return PostgresProcessorHooks


def _writer_hooks() -> type:
    from airbyte._writers.jsonl import JsonlWriter

    class JsonlWriterHooks(JsonlWriter):
        """PyAirbyte's JSONL staging writer, its private hooks mapped onto public-named methods."""

        def _open_new_file(self, file_path: Path) -> IO[str]:
            return self.open_file(file_path)

        def _write_record_dict(self, record_dict: dict, open_file_writer: IO[str]) -> None:
            self.write_record_dict(record_dict, open_file_writer)

        def _flush_active_batch(self, stream_name: str, progress_tracker: Any) -> None:
            batch_handle = self._active_batches.get(stream_name)
            super()._flush_active_batch(stream_name, progress_tracker)
            if batch_handle is not None:
                self.batch_closed(batch_handle)

        def open_file(self, file_path: Path) -> IO[str]:
            return super()._open_new_file(file_path)

        def write_record_dict(self, record_dict: dict, open_file_writer: IO[str]) -> None:
            super()._write_record_dict(record_dict, open_file_writer)

        def batch_closed(self, batch_handle: Any) -> None:
            """Called after a staged file of the stream was closed (its batch is complete)."""

        def active_batch(self, stream_name: str) -> Any:
            """The stream's open batch (a `BatchHandle`), or None."""
            return self._active_batches.get(stream_name)

        def new_batch(self, stream_name: str, progress_tracker: Any) -> Any:
            """Close the stream's open batch, if any, and open a new one (and its file)."""
            return self._new_batch(stream_name=stream_name, progress_tracker=progress_tracker)

        def set_staging_dir(self, path: Path) -> None:
            """Stage new files under `path` instead of the cache directory."""
            self._cache_dir = path

    return JsonlWriterHooks


def _cache_hooks() -> type:
    from typing import ClassVar

    from airbyte.caches.postgres import PostgresCache

    class PostgresCacheHooks(PostgresCache):
        """PyAirbyte's `PostgresCache` with its processor class and its write step public:
        set `processor_class`, override `write_messages`."""

        processor_class: ClassVar[type] = PostgresCache._sql_processor_class

        @classmethod
        def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
            super().__pydantic_init_subclass__(**kwargs)
            if "processor_class" in cls.model_fields:
                # Annotated without ClassVar, pydantic made it a field and the class would
                # silently keep the stock processor.
                raise TypeError(
                    f"{cls.__name__}.processor_class must be declared ClassVar[type[...]]"
                )
            cls._sql_processor_class = cls.processor_class

        def _write_airbyte_message_stream(
            self,
            stdin: Any,
            *,
            catalog_provider: Any,
            write_strategy: Any,
            state_writer: Any = None,
            progress_tracker: Any,
        ) -> None:
            self.write_messages(
                stdin,
                catalog_provider=catalog_provider,
                write_strategy=write_strategy,
                state_writer=state_writer,
                progress_tracker=progress_tracker,
            )

        def write_messages(
            self,
            stdin: Any,
            *,
            catalog_provider: Any,
            write_strategy: Any,
            state_writer: Any = None,
            progress_tracker: Any,
        ) -> None:
            """Process a source's messages into the cache (stock: PyAirbyte's own write)."""
            super()._write_airbyte_message_stream(
                stdin,
                catalog_provider=catalog_provider,
                write_strategy=write_strategy,
                state_writer=state_writer,
                progress_tracker=progress_tracker,
            )

    return PostgresCacheHooks


# The base classes import `airbyte`, so they are made on first access (PEP 562).
_LAZY_CLASSES: dict[str, Callable[[], type]] = {
    "PostgresProcessorHooks": _processor_hooks,
    "JsonlWriterHooks": _writer_hooks,
    "PostgresCacheHooks": _cache_hooks,
}


def __getattr__(name: str) -> Any:
    factory = _LAZY_CLASSES.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if name not in globals():
            globals()[name] = factory()
    return globals()[name]
