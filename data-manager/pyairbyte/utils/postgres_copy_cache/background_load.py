"""Load a stream's staged files into its loading table while the source is still being read.

PyAirbyte loads nothing until the source has finished; then the whole stream is copied at once,
and that time adds straight onto the sync. Here each staged file is loaded as soon as PyAirbyte
closes it (every `FastJsonlWriter.MAX_BATCH_SIZE` records), on a worker thread, so the server's
parsing overlaps with reading the source and only the last file is left for the end.

Atomicity is unchanged: a `BackgroundLoad` does everything -- create the loading table, COPY
and convert each file -- inside ONE transaction on its own connection, committed only by
`finish()`. Until then nothing is visible to anyone, and `abort()` (or a failed file) rolls
everything back. The worker thread is the only user of its connection.
"""

from __future__ import annotations

import gzip
import queue
import threading
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg2

# The staged files are JSON lines. Valid JSON never contains a raw control character (orjson and
# json.dumps escape them all), so CSV format with \x02 as delimiter and \x01 as quote reads each
# line verbatim into one text value: no escaping pass over the data is needed in Python.
STAGE_TABLE = "pg_temp.pyairbyte_copy_stage"
_COPY_LINES_SQL = (
    f"COPY {STAGE_TABLE} (line) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"
)
_COPY_CHUNK_BYTES = 1 << 20
_DONE = None  # queue sentinel

# (cursor positioned after the failed INSERT, the error) -> the exception to raise instead
ExplainError = Callable[[Any, psycopg2.Error], Exception]
# safe -> (DDL to run first, the INSERT ... SELECT from the stage table) for the next file
Statements = Callable[[bool], tuple[list[str], str]]


class BackgroundLoad:
    """One stream's load into `table_name`, in one transaction, fed file by file."""

    def __init__(
        self,
        *,
        connection: Any,  # a DBAPI connection from the cache's engine pool
        table_name: str,
        statements: Statements,
        explain_error: ExplainError,
        nullify: bool = False,
        before_commit: Callable[[Any, int], None] | None = None,
    ) -> None:
        """`statements(safe)` gives each file's SQL (the loading table may gain columns during
        the read); with `nullify`, a file whose fast INSERT fails is loaded again with the safe
        one (bad values NULL, recorded in `_airbyte_meta`). `before_commit(cursor, rows)` runs
        last, in the transaction, and may raise to roll everything back."""
        self.table_name = table_name
        self.rows = 0
        self._before_commit = before_commit
        self._connection = connection
        self._files: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        self._submitted: set[Path] = set()
        self._error: BaseException | None = None
        self._closed = False
        self._aborting = False  # set by abort(): skip the files still queued
        self._thread = threading.Thread(
            target=self._run,
            args=(statements, explain_error, nullify),
            name=f"pyairbyte-load-{table_name}",
            daemon=True,
        )
        self._thread.start()

    def submit(self, files: Iterable[Path]) -> None:
        """Queue staged files for loading, in the order the source emitted their records.

        Raises the load's error, if a file already failed: no point reading the source on.
        """
        if self._error is not None:
            self.abort()
            raise self._error
        for path in files:
            if path not in self._submitted:
                self._submitted.add(path)
                self._files.put(path)

    def _run(self, statements: Statements, explain_error: ExplainError, nullify: bool) -> None:
        try:
            cursor = self._connection.cursor()
            # Date-times without an offset are read as UTC, whatever the server's default.
            cursor.execute("SET LOCAL TimeZone = 'UTC'")
            cursor.execute(f"CREATE TEMP TABLE {STAGE_TABLE} (line text) ON COMMIT DROP")
            while (path := self._files.get()) is not _DONE and not self._aborting:
                with gzip.open(path, "rb") as staged_file:
                    cursor.copy_expert(_COPY_LINES_SQL, staged_file, size=_COPY_CHUNK_BYTES)
                ddl, insert_sql = statements(False)
                for statement in ddl:
                    cursor.execute(statement)
                cursor.execute("SAVEPOINT before_typed_insert")
                try:
                    cursor.execute(insert_sql)
                except psycopg2.Error as error:
                    cursor.execute("ROLLBACK TO SAVEPOINT before_typed_insert")
                    if not nullify or error.pgcode == "22P05":  # U+0000: not a cast problem
                        self._error = explain_error(cursor, error)
                        return
                    ddl, insert_sql = statements(True)
                    for statement in ddl:
                        cursor.execute(statement)
                    cursor.execute(insert_sql)
                self.rows += cursor.rowcount
                cursor.execute(f"TRUNCATE {STAGE_TABLE}")
        except BaseException as error:  # any error, re-raised in the caller's thread
            self._error = error

    def _stop_worker(self) -> None:
        self._files.put(_DONE)
        self._thread.join()

    def finish(self) -> str:
        """Wait for every queued file; commit and return the loading table, or roll back and
        raise the first error."""
        if self._closed:
            raise RuntimeError(f"the load into {self.table_name} was already finished or aborted")
        self._closed = True
        self._stop_worker()
        try:
            if self._error is not None:
                raise self._error
            if self._before_commit is not None:
                self._before_commit(self._connection.cursor(), self.rows)
            self._connection.commit()
        except BaseException:
            with suppress(Exception):
                self._connection.rollback()
            raise
        finally:
            self._connection.close()
        return self.table_name

    def abort(self) -> None:
        """Stop and roll back: nothing of this load becomes visible. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._aborting = True  # a stopped sync may have queued many files: load none of them
        self._stop_worker()
        with suppress(Exception):
            self._connection.rollback()
        with suppress(Exception):
            self._connection.close()
