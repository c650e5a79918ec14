"""Give declarative (manifest) sources the state PyAirbyte stored, so incremental streams resume.

The bug, in airbyte 0.71.3: `Source.read()` writes the cache's stored state to a file and runs
the connector with `read --config <f> --catalog <f> --state <f>`. For manifest sources,
`airbyte._executors.declarative.DeclarativeExecutor.execute` builds
`ConcurrentDeclarativeSource(config=..., source_config=manifest)` WITHOUT `state=`; the CDK
(airbyte-cdk 7.x) only takes state in that constructor -- the `state` that the entrypoint passes
to `read()` is ignored. So every run starts from the beginning and an append stream doubles.

The fix, `enable_declarative_state()`, replaces exactly one attribute:
`DeclarativeExecutor.execute` (class-level, so every declarative source in this process). The
replacement does what 0.71.3's `execute` does -- build the source with the connector config from
`--config` merged over the injected-components config, wrap it in `AirbyteEntrypoint`, and run
the mapped CLI args -- and additionally, when `--state` is given, reads that file with the CDK's
own `read_state` and passes it as `state=` to `ConcurrentDeclarativeSource`. It uses these
0.71.3 internals of `DeclarativeExecutor`: `_manifest_dict`, `_config_dict`,
`_config_from_args(args)` and `map_cli_args(args)`. Commands without `--state` (spec, check,
discover) go to the original method untouched.

It is idempotent (a marker on the function) and refuses to patch anything but airbyte 0.71.3
(`UnsupportedAirbyteVersionError`), or an executor missing the internals above.

The same replacement makes a read stoppable (sync_limits.py). The CDK reads a manifest source on
its own worker threads, which put records in a queue (`_concurrent_source._queue`, max 10,000)
that the read loop takes from. Two gaps, both in airbyte-cdk 7.x:
- a read loop waiting on a source that never answers waits forever on that queue:
  `wake_declarative_reads()` puts a log message in the queue of every read in progress, so the
  loop hands a message to the caller, which can then stop;
- a read that is abandoned (a limit, a load error) leaves its worker threads running: a
  paginator that never ends keeps requesting until the queue is full, then blocks forever, and
  the process can never exit (ThreadPoolExecutor threads are joined at exit). When the read
  ends early, `_stop_threads` cancels the pending work, empties the queue and makes further
  puts raise, so each worker thread finishes its current request and stops.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

from pyairbyte.utils.postgres_copy_cache.version_guard import (
    UnsupportedAirbyteVersionError,
    check_airbyte_version,
)

log = logging.getLogger(__name__)

_PATCH_MARKER = "_pyairbyte_passes_declarative_state"
# The CDK sources being read in this process (for wake_declarative_reads).
_reading: weakref.WeakSet[Any] = weakref.WeakSet()


class _ReadAbandoned(Exception):
    """Raised in a CDK worker thread that tries to queue a record for a read that was stopped."""


def _read_queue(source: Any) -> Any:
    return getattr(getattr(source, "_concurrent_source", None), "_queue", None)


def wake_declarative_reads() -> None:
    """Wake every manifest read loop of this process that waits for its source."""
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
    """Stop the CDK worker threads of a read that ended early (see the module docstring)."""
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
    # Wake workers blocked on a full queue; their next put raises.
    with suppress(Exception):
        while True:
            queue.get_nowait()


_REQUIRED_EXECUTOR_ATTRIBUTES = ("_config_from_args", "map_cli_args", "execute")


def _state_path_from_args(args: list[str]) -> str | None:
    if "--state" not in args:
        return None
    index = args.index("--state") + 1
    return args[index] if index < len(args) else None


def enable_declarative_state() -> None:
    """Patch PyAirbyte (once per process) so manifest sources receive the stored state."""
    check_airbyte_version()
    from airbyte._executors.declarative import DeclarativeExecutor
    from airbyte_cdk.entrypoint import AirbyteEntrypoint
    from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
        ConcurrentDeclarativeSource,
    )

    if getattr(DeclarativeExecutor.execute, _PATCH_MARKER, False):
        return
    missing = [a for a in _REQUIRED_EXECUTOR_ATTRIBUTES if not hasattr(DeclarativeExecutor, a)]
    if missing:
        raise UnsupportedAirbyteVersionError(
            f"DeclarativeExecutor lacks {', '.join(missing)}; the declarative-state patch in "
            f"{__name__} was written for airbyte 0.71.3 and must be re-checked."
        )

    original_execute = DeclarativeExecutor.execute

    def execute(
        self: DeclarativeExecutor,
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

    setattr(execute, _PATCH_MARKER, True)
    execute.__doc__ = "DeclarativeExecutor.execute, passing --state to the source (see module)."
    DeclarativeExecutor.execute = execute
