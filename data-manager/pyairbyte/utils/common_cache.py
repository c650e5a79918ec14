"""Named PostgreSQL caches for PyAirbyte syncs (the guide's `get_cache` and `CACHE_CONFIGS`).

Connection settings come from env through `pyairbyte.settings`, read when a cache is requested
(not at import):
- `default`: POSTGRES_HOST/PORT/USER/PASSWORD/DB, schema CACHE_SCHEMA (default `pyairbyte_cache`).
- `sweden`: the same variables prefixed `SWEDEN_` (e.g. SWEDEN_POSTGRES_HOST), each falling back
  to the unprefixed one, and schema SWEDEN_CACHE_SCHEMA (default `pyairbyte_cache_sweden`).
A `connector_name` gives the cache a table prefix (`next-erp` -> `next_erp_`), so several
connectors can share one schema without their tables colliding.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pyairbyte import settings
from pyairbyte.utils.airbyte_internals import prepare_airbyte

if TYPE_CHECKING:
    from airbyte.caches import PostgresCache

DEFAULT_CACHE_SCHEMA = "pyairbyte_cache"

# name -> (env prefix of its settings: <prefix>POSTGRES_*, <prefix>CACHE_SCHEMA; default schema)
_NAMED_CACHES: dict[str, tuple[str, str]] = {
    "default": ("", DEFAULT_CACHE_SCHEMA),
    "sweden": ("SWEDEN_", "pyairbyte_cache_sweden"),
}


def _cache_config(name: str) -> dict[str, Any]:
    prefix, default_schema = _NAMED_CACHES[name]
    # A prefixed cache's settings (e.g. SWEDEN_POSTGRES_HOST) fall back to the unprefixed ones.
    pg = settings.postgres_settings(prefix)
    return {
        "host": pg.host,
        "port": pg.port,
        "username": pg.user,
        "password": pg.password,
        "database": pg.dbname,
        "schema_name": settings.cache_schema(prefix, default_schema),
    }


class _EnvCacheConfigs(Mapping):
    """`CACHE_CONFIGS[name]` as in the guide, but built from env on every access."""

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in _NAMED_CACHES:
            raise KeyError(
                f"unknown cache {name!r}; known caches: {', '.join(_NAMED_CACHES)}. "
                "Add an entry to _NAMED_CACHES in pyairbyte/utils/common_cache.py"
            )
        return _cache_config(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_NAMED_CACHES)

    def __len__(self) -> int:
        return len(_NAMED_CACHES)


CACHE_CONFIGS: Mapping[str, dict[str, Any]] = _EnvCacheConfigs()


def table_prefix_for(connector_name: str) -> str:
    return f"{connector_name.replace('-', '_').lower()}_"


def get_cache(
    cache_name: str = "default",
    connector_name: str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> PostgresCache:
    """A PostgresCache (the lossless COPY-loading subclass) for the named configuration.

    `overrides` replaces entries of the named configuration (host, port, username, password,
    database, schema_name), e.g. values a caller got from its own configuration.
    """
    prepare_airbyte()  # before `airbyte` is imported
    from pyairbyte.utils.postgres_copy_cache import CopyPostgresCache

    cache_config = {**CACHE_CONFIGS[cache_name], **(overrides or {})}
    if connector_name:
        cache_config["table_prefix"] = table_prefix_for(connector_name)
    cache_config["cache_dir"] = settings.project_dir() / "airbyte" / "cache" / cache_name
    return CopyPostgresCache(**cache_config)
