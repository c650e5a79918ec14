"""`CopyPostgresCache`: a `PostgresCache` whose processor loads with COPY and keeps data exact."""

from __future__ import annotations

import logging
import shutil
from typing import IO, TYPE_CHECKING, Any, ClassVar

from airbyte.shared.sql_processor import SqlProcessorBase
from pydantic import PrivateAttr

from pyairbyte.utils.airbyte_internals import PostgresCacheHooks, prepare_airbyte
from pyairbyte.utils.data_policy import DataPolicy
from pyairbyte.utils.postgres_copy_cache.ledger import (
    DEAD_LETTER_DDL,
    DEAD_LETTER_INSERT,
    SyncLedger,
    dead_letter_table,
    recording_into,
)
from pyairbyte.utils.postgres_copy_cache.processor import CopyPostgresSqlProcessor
from pyairbyte.utils.sync_limits import staging_dir_for

if TYPE_CHECKING:
    from airbyte.progress import ProgressTracker
    from airbyte.shared.catalog_providers import CatalogProvider
    from airbyte.shared.state_writers import StateWriterBase
    from airbyte.strategies import WriteStrategy


log = logging.getLogger(__name__)


class CopyPostgresCache(PostgresCacheHooks):
    """Drop-in `PostgresCache` (same settings, tables, state and write strategies) that is lossless.

    Creating one also prepares PyAirbyte for the process (`airbyte_internals.prepare_airbyte`):
    with this cache, a manifest source's incremental streams resume from the cursor stored in the
    cache instead of re-reading all, and lines the reader cannot parse are kept.
    """

    processor_class: ClassVar[type[SqlProcessorBase]] = CopyPostgresSqlProcessor
    _last_ledger: SyncLedger | None = PrivateAttr(default=None)
    _data_policy: DataPolicy | None = PrivateAttr(default=None)

    def use_data_policy(self, policy: DataPolicy) -> None:
        """The policy for writes outside `sync_connector`, which takes the connector YAML's."""
        self._data_policy = policy

    @property
    def data_policy(self) -> DataPolicy | None:
        return self._data_policy

    @property
    def last_ledger(self) -> SyncLedger | None:
        """The record accounting of the last write into this cache (see ledger.py)."""
        return self._last_ledger

    def __init__(self, **data: Any) -> None:
        prepare_airbyte()
        super().__init__(**data)

    def write_messages(
        self,
        stdin: IO[str] | Any,
        *,
        catalog_provider: CatalogProvider,
        write_strategy: WriteStrategy,
        state_writer: StateWriterBase | None = None,
        progress_tracker: ProgressTracker,
    ) -> None:
        """PyAirbyte's write of a source's messages into the cache, plus:

        - when reading fails, roll back the loads that were already running in the background,
          at once rather than whenever the processor is garbage-collected (their open
          transactions would block a DROP SCHEMA);
        - the write stages its files in a directory of its own, removed on every exit path.
          PyAirbyte deletes staged files only after a successful write (or when the writer is
          garbage-collected, which a failed sync's traceback can prevent for the process's
          life), so failed and stopped syncs left them under the cache directory for good.
        """
        processor = self.get_record_processor(
            source_name=self.name,
            catalog_provider=catalog_provider,
            state_writer=state_writer,
        )
        staging_dir = staging_dir_for(self.cache_dir, self.name)
        processor.file_writer.set_staging_dir(staging_dir)
        self._last_ledger = processor.ledger
        try:
            with recording_into(processor.ledger):
                processor.process_airbyte_messages(
                    messages=stdin,
                    write_strategy=write_strategy,
                    progress_tracker=progress_tracker,
                )
            # Streams that staged nothing (every line rejected) are checked here.
            for stream in processor.ledger.streams:
                if stream not in processor.accounted:  # a load checked it before its commit
                    processor.check_accounting(stream)
        finally:
            processor.abort_background_loads()  # a no-op after success: all were finished
            if self.cleanup:  # PyAirbyte's own switch: `cleanup=False` keeps the staged files
                shutil.rmtree(staging_dir, ignore_errors=True)
            # Whatever happened to the sync, what was rejected is kept.
            self.write_dead_letters(processor.ledger)
        progress_tracker.log_cache_processing_complete()

    def write_dead_letters(self, ledger: SyncLedger) -> None:
        """Append the sync's rejected records to `_dead_letter_<connector>` (one transaction)."""
        with ledger.lock:
            letters, ledger.dead_letters = ledger.dead_letters, []
        if not letters:
            return
        table = f'"{self.schema_name}"."{dead_letter_table(ledger.connector_name or self.name)}"'
        connection = self.get_sql_engine().raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema_name}"')
            cursor.execute(DEAD_LETTER_DDL.format(table=table))
            cursor.executemany(
                DEAD_LETTER_INSERT.format(table=table),
                [
                    (ledger.run_id, letter.stream, _storable(letter.reason), _storable(letter.raw))
                    for letter in letters
                ],
            )
            connection.commit()
        finally:
            connection.close()
        log.warning(
            "%d record(s) went to the dead-letter table %s.%s",
            len(letters),
            self.schema_name,
            dead_letter_table(ledger.connector_name or self.name),
        )


def _storable(text: str) -> str:
    """Text PostgreSQL takes: no U+0000, no lone surrogate (both kept as escapes)."""
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()
