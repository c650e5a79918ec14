"""The platform's lossless, fast PostgreSQL cache for PyAirbyte.

- `CopyPostgresCache`: a `PostgresCache` subclass; same constructor, tables, `_airbyte_*`
  columns, state tables and write strategies, but records are loaded with COPY (no pandas),
  strings and numbers stay exact, date-times are timestamptz and objects/arrays jsonb.
- `enable_declarative_state()`: makes manifest sources resume incremental streams from the
  state stored in the cache (also done by creating a `CopyPostgresCache`).
- `CacheLoadError`: a staged value PostgreSQL rejected; nothing was written.

Importing this package is cheap: it only prepares PyAirbyte's environment (offline mode, files
under the project directory), which must happen before `airbyte` is imported. The names above
import `airbyte` (8-15 s, ~300 MB) on first access, so code servers should reach them lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from pyairbyte.utils.airbyte_env import configure_airbyte_environment

configure_airbyte_environment()

if TYPE_CHECKING:
    from pyairbyte.utils.postgres_copy_cache.cache import CopyPostgresCache as CopyPostgresCache
    from pyairbyte.utils.postgres_copy_cache.declarative_state import (
        enable_declarative_state as enable_declarative_state,
    )
    from pyairbyte.utils.postgres_copy_cache.load_errors import CacheLoadError as CacheLoadError
    from pyairbyte.utils.postgres_copy_cache.processor import (
        CopyPostgresSqlProcessor as CopyPostgresSqlProcessor,
    )

_LAZY_EXPORTS = {
    "CopyPostgresCache": "cache",
    "CopyPostgresSqlProcessor": "processor",
    "CacheLoadError": "load_errors",
    "enable_declarative_state": "declarative_state",
}

__all__ = list(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_LAZY_EXPORTS[name]}"), name)
