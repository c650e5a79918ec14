"""`CopyPostgresCache`: a `PostgresCache` whose processor loads with COPY and keeps data exact."""

from __future__ import annotations

from typing import Any, ClassVar

from airbyte.caches.postgres import PostgresCache
from airbyte.shared.sql_processor import SqlProcessorBase

from pyairbyte.utils.postgres_copy_cache.declarative_state import enable_declarative_state
from pyairbyte.utils.postgres_copy_cache.processor import CopyPostgresSqlProcessor
from pyairbyte.utils.postgres_copy_cache.version_guard import check_airbyte_version


class CopyPostgresCache(PostgresCache):
    """Drop-in `PostgresCache` (same settings, tables, state and write strategies) that is lossless.

    Creating one also enables declarative incremental state for the process (see
    `declarative_state.enable_declarative_state`): with this cache, a manifest source's
    incremental streams resume from the cursor stored in the cache instead of re-reading all.
    """

    _sql_processor_class: ClassVar[type[SqlProcessorBase]] = CopyPostgresSqlProcessor

    def __init__(self, **data: Any) -> None:
        check_airbyte_version()
        enable_declarative_state()
        super().__init__(**data)
