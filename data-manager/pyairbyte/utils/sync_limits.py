"""Bounds on one connector sync: a time limit, a record limit, and a way to stop a read that hangs.

Why: a source whose paginator never ends (30,700 requests in 120 s) or that never answers ran
until something outside killed it. `run_bounded` runs the sync's connector work (install,
discover, check, read and load) on a worker thread and stops it when a limit is passed:

- every message the connector emits goes through `SyncBudget.bounded_execute`, which counts the
  records and raises `SyncLimitExceededError` once the deadline or the record limit is passed. A
  source that keeps emitting is therefore stopped inside its own read, and the cache rolls back
  the streams still loading (their tables keep the previous sync's rows);
- a source that emits nothing (it never answers) cannot be stopped from inside. At the deadline
  the caller interrupts it: a connector process started by this sync is killed, which ends its
  message stream, and a manifest source's read loop is woken (see
  `airbyte_internals.wake_declarative_reads`) so it reaches the check above. If the worker still
  has not stopped after SYNC_STOP_GRACE_SECONDS (a manifest source blocked in a request without
  a timeout), the caller gives up on it: it can no longer write anything, since every further
  message raises, and its staging files are removed here.

Progress: the same count is kept per stream, and while the caller waits for the worker it
reports every `progress_seconds` the records of each stream so far and their rate since the last
report (`SyncBudget.progress_line`), through the `progress` callable (a logger's info, or a
Dagster `context.log.info`). It reports from the caller's thread, so a framework's log that is
bound to the calling step gets the lines.

Staging files: each write stages under its own directory (`staging_dir_for`), registered on the
active budget, and removed on every exit path (see `CopyPostgresCache`).
"""

from __future__ import annotations

import contextvars
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from pyairbyte.errors import SyncLimitExceededError

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_active_budget: contextvars.ContextVar[SyncBudget | None] = contextvars.ContextVar(
    "pyairbyte_sync_budget", default=None
)

# Staging directories older than this belong to a process that died mid-sync (kill -9): no
# sync that is still alive leaves its staging untouched that long.
STALE_STAGING_SECONDS = 24 * 3600


class SyncBudget:
    """The limits of one sync, and what it has used of them. 0 means no limit."""

    def __init__(
        self,
        connector_name: str,
        *,
        max_seconds: float,
        max_records: int,
        seconds_setting: str = "SYNC_MAX_SECONDS",
        records_setting: str = "SYNC_MAX_RECORDS",
        progress: Callable[[str], None] | None = None,
        progress_seconds: float = 0,
    ) -> None:
        self.connector_name = connector_name
        self.max_seconds = max_seconds
        self.max_records = max_records
        self.seconds_setting = seconds_setting
        self.records_setting = records_setting
        self.started = time.monotonic()
        self.deadline = self.started + max_seconds if max_seconds else None
        self.records = 0
        self.stream_records: dict[str, int] = {}
        self.progress = progress
        self.progress_seconds = progress_seconds
        self._last_report: tuple[float, dict[str, int]] = (self.started, {})
        self.exceeded: SyncLimitExceededError | None = None
        self.staging_dirs: list[Path] = []
        self._lock = threading.Lock()
        self._children_before = _child_pids()
        # Record accounting and the connector YAML's data policy, read by the cache's processor
        # (ledger.py, data_policy.py); set by sync_connector.
        from pyairbyte.utils.postgres_copy_cache.ledger import SyncLedger

        self.ledger = SyncLedger(connector_name)
        self.policy: Any = None

    # ---- the limits ----------------------------------------------------------------------------

    def _exceed(self, limit: str) -> SyncLimitExceededError:
        with self._lock:
            if self.exceeded is None:
                self.exceeded = self._error(limit)
            return self.exceeded

    def _error(self, limit: str) -> SyncLimitExceededError:
        elapsed = time.monotonic() - self.started
        if limit == "max_seconds":
            what = f"ran for {elapsed:.0f} s, past its limit of {self.max_seconds:g} s"
            setting, value = self.seconds_setting, self.max_seconds
        else:
            what = f"read more than its limit of {self.max_records} records"
            setting, value = self.records_setting, self.max_records
        return SyncLimitExceededError(
            f"sync of {self.connector_name} stopped: it {what} ({setting}); "
            f"{self.records} records were read. The streams still being read were rolled back, "
            "so their tables keep the rows of the previous successful sync. "
            f"Fix: if the source is just slow or large, raise {setting} (0 means no limit); "
            "if it never ends (a paginator that never stops, a source that never answers), "
            "fix the connector or its API.",
            limit=limit,
            value=value,
            setting=setting,
        )

    def check(self) -> None:
        """Raise SyncLimitExceededError if a limit has been passed (by this thread or another)."""
        if self.exceeded is not None:
            raise self.exceeded
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise self._exceed("max_seconds")

    def remaining_seconds(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def bounded_execute(
        self, execute: Callable[..., Iterator[Any]]
    ) -> Callable[..., Iterator[Any]]:
        """Wrap a source's message iterator (`airbyte_internals.wrap_source_messages`): every
        message it yields is counted and checked."""
        from airbyte_protocol.models import Type

        def bounded(*args: Any, **kwargs: Any) -> Iterator[Any]:
            self.check()
            messages = execute(*args, **kwargs)
            try:
                for message in messages:
                    self.check()
                    if message.type is not Type.LOG:
                        self.ledger.count_message(message)
                    if message.type is Type.RECORD:
                        self.records += 1
                        stream = message.record.stream
                        self.stream_records[stream] = self.stream_records.get(stream, 0) + 1
                        if self.max_records and self.records > self.max_records:
                            raise self._exceed("max_records")
                    yield message
            except SyncLimitExceededError:
                raise
            except Exception as error:
                # A connector process killed at the deadline fails; say why it was killed.
                if self.exceeded is not None:
                    raise self.exceeded from error
                raise
            finally:
                messages.close()  # stops a manifest source's threads (airbyte_internals)

        return bounded

    # ---- progress ------------------------------------------------------------------------------

    def progress_line(self) -> str:
        """Records so far and records/s (since the last line) of each stream, e.g.
        `sync of source-x: 12 s, 340 records: items 300 records (25.0/s), users 40 (3.3/s)`."""
        now = time.monotonic()
        counts = self.stream_records.copy()  # the worker adds to it meanwhile
        last_time, last_counts = self._last_report
        self._last_report = (now, counts)
        interval = max(now - last_time, 1e-6)
        streams = ", ".join(
            f"{stream} {count} records ({(count - last_counts.get(stream, 0)) / interval:.1f}/s)"
            for stream, count in counts.items()
        )
        total = sum(counts.values())
        return (
            f"sync of {self.connector_name}: {now - self.started:.0f} s, {total} records read"
            + (f": {streams}" if streams else " (the source has sent no record yet)")
        )

    def report_progress(self) -> None:
        if self.progress is None:
            return
        try:
            self.progress(self.progress_line())
        except Exception:  # a broken log must not fail the sync
            log.warning("sync of %s: progress report failed", self.connector_name, exc_info=True)
            self.progress = None

    def wait(self, worker: threading.Thread) -> None:
        """Join `worker` until it ends or the deadline passes, reporting progress meanwhile."""
        while worker.is_alive():
            remaining = self.remaining_seconds()
            if remaining is not None and remaining <= 0:
                return
            step = self.progress_seconds if self.progress and self.progress_seconds else None
            if step is None or (remaining is not None and remaining < step):
                worker.join(remaining)
                return
            worker.join(step)
            if worker.is_alive():
                self.report_progress()

    # ---- stopping a read that hangs ------------------------------------------------------------

    def interrupt(self) -> None:
        """Make a worker that waits on its source notice the exceeded limit."""
        from pyairbyte.utils.airbyte_internals import wake_declarative_reads

        for pid in _child_pids() - self._children_before:
            with suppress(Exception):
                import psutil

                log.warning("sync of %s: killing connector process %s", self.connector_name, pid)
                psutil.Process(pid).kill()
        wake_declarative_reads()

    def remove_staging(self) -> None:
        for path in self.staging_dirs:
            shutil.rmtree(path, ignore_errors=True)


def _child_pids() -> set[int]:
    """This process's connector processes (those run from the connector install root)."""
    import psutil

    from pyairbyte.utils.airbyte_env import connector_install_root

    root = str(connector_install_root())
    pids = set()
    with suppress(Exception):
        for child in psutil.Process().children(recursive=True):
            with suppress(psutil.Error):
                if any(root in part for part in child.cmdline()):
                    pids.add(child.pid)
    return pids


def active_budget() -> SyncBudget | None:
    """The budget of the sync running in this thread, if any."""
    return _active_budget.get()


def staging_dir_for(cache_dir: Path, source_name: str) -> Path:
    """A fresh staging directory for one write, registered with the active sync's budget."""
    import ulid

    remove_stale_staging(cache_dir)
    path = Path(cache_dir) / f"{source_name}-{ulid.ULID()}"
    path.mkdir(parents=True, exist_ok=True)
    budget = active_budget()
    if budget is not None:
        budget.staging_dirs.append(path)
    return path


def remove_stale_staging(cache_dir: Path, older_than: float = STALE_STAGING_SECONDS) -> None:
    """Remove staging left by processes that died mid-sync (nothing else can clean it up)."""
    cutoff = time.time() - older_than
    with suppress(OSError):
        for entry in Path(cache_dir).iterdir():
            with suppress(OSError):
                newest = max(
                    [entry.stat().st_mtime]
                    + ([p.stat().st_mtime for p in entry.iterdir()] if entry.is_dir() else [])
                )
                if newest < cutoff:
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)


def run_bounded(budget: SyncBudget, work: Callable[[], _T], grace_seconds: float) -> _T:
    """Run `work` on a worker thread under `budget`; raise SyncLimitExceededError past a limit.

    The worker is a daemon thread, so a source that never answers cannot keep the process alive.
    An interrupt of the caller (KeyboardInterrupt, Dagster's termination) stops the worker too.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        _active_budget.set(budget)
        try:
            outcome["value"] = work()
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name=f"sync-{budget.connector_name}", daemon=True)
    worker.start()
    try:
        budget.wait(worker)
    except BaseException:
        budget._exceed("max_seconds")  # any further message stops the worker
        budget.interrupt()
        worker.join(grace_seconds)
        budget.remove_staging()
        raise
    if worker.is_alive():
        exceeded = budget._exceed("max_seconds")
        log.warning("%s; stopping its read", exceeded)
        budget.interrupt()
        worker.join(grace_seconds)
        if worker.is_alive():
            log.warning(
                "sync of %s: the read did not stop within %g s (SYNC_STOP_GRACE_SECONDS); "
                "leaving it behind, it can no longer write anything",
                budget.connector_name,
                grace_seconds,
            )
        budget.remove_staging()
        raise exceeded
    if "error" in outcome:
        error = outcome["error"]
        if budget.exceeded is not None and error is not budget.exceeded:
            raise budget.exceeded from error
        raise error
    return outcome["value"]
