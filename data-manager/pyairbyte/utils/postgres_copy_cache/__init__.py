"""The platform's lossless, fast PostgreSQL cache for PyAirbyte.

- `CopyPostgresCache`: a `PostgresCache` subclass; same constructor, tables, `_airbyte_*`
  columns, state tables and write strategies, but records are loaded with COPY (no pandas),
  strings and numbers stay exact, date-times are timestamptz and objects/arrays jsonb.
- `enable_declarative_state()`: makes manifest sources resume incremental streams from the
  state stored in the cache (`airbyte_internals.prepare_airbyte`, also run by creating a
  `CopyPostgresCache`).
- `CacheLoadError`: a staged value PostgreSQL rejected; nothing was written.

Importing this package is cheap (PyAirbyte's environment is set when `pyairbyte.utils` is
imported, before `airbyte` is). The names above import `airbyte` (8-15 s, ~300 MB) on first
access, so code servers should reach them lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyairbyte.utils.postgres_copy_cache.cache import CopyPostgresCache as CopyPostgresCache
    from pyairbyte.utils.postgres_copy_cache.load_errors import CacheLoadError as CacheLoadError
    from pyairbyte.utils.postgres_copy_cache.processor import (
        CopyPostgresSqlProcessor as CopyPostgresSqlProcessor,
    )

# name -> (module, attribute)
_LAZY_EXPORTS = {
    "CopyPostgresCache": (f"{__name__}.cache", "CopyPostgresCache"),
    "CopyPostgresSqlProcessor": (f"{__name__}.processor", "CopyPostgresSqlProcessor"),
    "CacheLoadError": (f"{__name__}.load_errors", "CacheLoadError"),
    "enable_declarative_state": ("pyairbyte.utils.airbyte_internals", "prepare_airbyte"),
}

__all__ = list(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _LAZY_EXPORTS[name]
    return getattr(import_module(module), attribute)
