"""Named PostgreSQL caches for PyAirbyte syncs (the guide's `get_cache` and `CACHE_CONFIGS`).

Connection settings come from env, read when a cache is requested (not at import):
- `default`: POSTGRES_HOST/PORT/USER/PASSWORD/DB, schema `pyairbyte_cache`.
- `sweden`: the same variables prefixed `SWEDEN_` (e.g. SWEDEN_POSTGRES_HOST), each falling back
  to the unprefixed one, and schema SWEDEN_CACHE_SCHEMA (default `pyairbyte_cache_sweden`).
A `connector_name` gives the cache a table prefix (`next-erp` -> `next_erp_`), so several
connectors can share one schema without their tables colliding.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pyairbyte import settings
from pyairbyte.utils.airbyte_env import configure_airbyte_environment

if TYPE_CHECKING:
    from airbyte.caches import PostgresCache

DEFAULT_CACHE_SCHEMA = "pyairbyte_cache"

# name -> (env prefix for connection settings, env var for the schema, default schema)
_NAMED_CACHES: dict[str, tuple[str, str, str]] = {
    "default": ("", "CACHE_SCHEMA", DEFAULT_CACHE_SCHEMA),
    "sweden": ("SWEDEN_", "SWEDEN_CACHE_SCHEMA", "pyairbyte_cache_sweden"),
}


def _cache_config(name: str) -> dict[str, Any]:
    prefix, schema_var, default_schema = _NAMED_CACHES[name]
    base = settings.postgres_settings()

    def env(var: str, fallback: Any) -> Any:
        # A prefixed cache (e.g. SWEDEN_POSTGRES_HOST) falls back to the default setting.
        return os.environ.get(f"{prefix}{var}", fallback) if prefix else fallback

    return {
        "host": env("POSTGRES_HOST", base.host),
        "port": int(env("POSTGRES_PORT", base.port)),
        "username": env("POSTGRES_USER", base.user),
        "password": env("POSTGRES_PASSWORD", base.password),
        "database": env("POSTGRES_DB", base.dbname),
        "schema_name": os.environ.get(schema_var, default_schema),
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


def get_cache(cache_name: str = "default", connector_name: str | None = None) -> PostgresCache:
    """A PostgresCache (the lossless COPY-loading subclass) for the named configuration."""
    configure_airbyte_environment()
    from pyairbyte.utils.postgres_copy_cache import CopyPostgresCache

    cache_config = dict(CACHE_CONFIGS[cache_name])
    if connector_name:
        cache_config["table_prefix"] = table_prefix_for(connector_name)
    cache_config["cache_dir"] = settings.project_dir() / "airbyte" / "cache" / cache_name
    return CopyPostgresCache(**cache_config)
