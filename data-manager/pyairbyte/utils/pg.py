"""The one place the platform opens a psycopg2 connection to PostgreSQL.

Every caller used to build its own `psycopg2.connect(...)`: some without a timeout (an
unreachable host then hung a CLI command for the OS's TCP timeout, minutes), none saying who held
the connection. `connect()` gives each one the same settings:
- the POSTGRES_* settings read at call time (pyairbyte.settings), unless the caller passes others;
- `connect_timeout` (10 s) so a stopped database fails fast with psycopg2's own message;
- `application_name`, so `pg_stat_activity` shows which part of the platform holds a connection.

The table-copy utils use psycopg 3 for its C row formatting (`pg_copy.connect_postgres`), and
PyAirbyte's cache opens its own through SQLAlchemy; those are the two exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

APPLICATION_NAME = "dataplatform"
CONNECT_TIMEOUT = 10


def params_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """psycopg2 keyword arguments from a POSTGRES_* mapping (e.g. a child process's env)."""
    return {
        "host": env["POSTGRES_HOST"],
        "port": int(env["POSTGRES_PORT"]),
        "user": env["POSTGRES_USER"],
        "password": env.get("POSTGRES_PASSWORD", ""),
        "dbname": env["POSTGRES_DB"],
    }


def params_from_cache(config: Mapping[str, Any]) -> dict[str, Any]:
    """psycopg2 keyword arguments from a cache configuration (a `CACHE_CONFIGS` entry)."""
    return {
        "host": config["host"],
        "port": config["port"],
        "user": config["username"],
        "password": config["password"],
        "dbname": config["database"],
    }


def connect(
    params: Mapping[str, Any] | None = None,
    *,
    connect_timeout: int = CONNECT_TIMEOUT,
    application_name: str = APPLICATION_NAME,
):
    """A psycopg2 connection; `params` are psycopg2 keyword arguments (default: POSTGRES_*)."""
    import psycopg2

    if params is None:
        from pyairbyte import settings

        params = settings.postgres_settings().psycopg2_kwargs()
    options = {"connect_timeout": connect_timeout, "application_name": application_name}
    return psycopg2.connect(**{**options, **params})


@contextmanager
def cursor(params: Mapping[str, Any] | None = None, **options) -> Iterator[Any]:
    """A cursor in one transaction: committed when the block ends, rolled back if it raises."""
    conn = connect(params, **options)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()
