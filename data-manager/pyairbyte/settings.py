"""Where things live and how to reach PostgreSQL: every setting comes from env, with defaults.

Functions (not module constants) so that a changed environment, e.g. in tests, is honoured.

| env var                    | default                                   |
|----------------------------|-------------------------------------------|
| APP_ROOT                   | the repository root (derived from this file) |
| DATAPLATFORM_PROJECT_DIR   | $APP_ROOT/.project                        |
| CONNECTORS_DIR             | $APP_ROOT/data-manager/external-connectors |
| DBT_PROJECT_DIR            | $APP_ROOT/dbt_models                      |
| DBT_PROFILES_DIR           | $DBT_PROJECT_DIR                          |
| POSTGRES_HOST              | 127.0.0.1                                 |
| POSTGRES_PORT              | 5432                                      |
| POSTGRES_USER              | postgres                                  |
| POSTGRES_PASSWORD          | (empty)                                   |
| POSTGRES_DB                | dataplatform                              |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# data-manager/pyairbyte/settings.py -> the repository root is two levels above data-manager.
_DERIVED_APP_ROOT = Path(__file__).resolve().parents[2]


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def app_root() -> Path:
    return _path_from_env("APP_ROOT", _DERIVED_APP_ROOT)


def project_dir() -> Path:
    """One gitignored directory for everything the platform writes at run time.

    Connector venvs, PyAirbyte logs and staging files, the local PostgreSQL cluster and
    DAGSTER_HOME all live here, never in the current working directory or /tmp.
    """
    return _path_from_env("DATAPLATFORM_PROJECT_DIR", app_root() / ".project")


def connectors_dir() -> Path:
    return _path_from_env("CONNECTORS_DIR", app_root() / "data-manager" / "external-connectors")


def dbt_project_dir() -> Path:
    return _path_from_env("DBT_PROJECT_DIR", app_root() / "dbt_models")


def dbt_profiles_dir() -> Path:
    return _path_from_env("DBT_PROFILES_DIR", dbt_project_dir())


def code_locations_file() -> Path:
    return app_root() / "data-manager" / "resources" / "dagster" / "code-locations.json"


@dataclass(frozen=True)
class PostgresSettings:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    def psycopg2_kwargs(self) -> dict:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
        }


def postgres_settings() -> PostgresSettings:
    port = os.environ.get("POSTGRES_PORT", "5432")
    try:
        port_number = int(port)
    except ValueError:
        raise ValueError(
            f"env POSTGRES_PORT={port!r} is not a port number; set it to e.g. 5432"
        ) from None
    return PostgresSettings(
        host=os.environ.get("POSTGRES_HOST", "127.0.0.1"),
        port=port_number,
        user=os.environ.get("POSTGRES_USER", "postgres"),
        password=os.environ.get("POSTGRES_PASSWORD", ""),
        dbname=os.environ.get("POSTGRES_DB", "dataplatform"),
    )


def env_int(name: str, default: int) -> int:
    """A positive integer setting from env (batch sizes, ports, attempts), with a clear error."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"env {name}={value!r} is not an integer; set e.g. {default}") from None
    if number < 1:
        raise ValueError(f"env {name}={value!r} must be at least 1")
    return number
