"""The settings layer: typed settings read from env when a function is called, and the shared
settings of the utils (paths, PostgreSQL and the caches, the event store, syncs, database copies).

Nothing reads env at import time: each `*_settings()` function builds its pydantic-settings class
on the call (`load`), so a changed environment (tests, a resource that sets values) is honoured.
Each kind of value has one parser (the annotated types below: `Port`, `PositiveInt`, `Seconds`,
...), and a bad value raises `pyairbyte.errors.SettingsError` naming the variable, the value and
the fix. An empty variable counts as unset (except MYSQL_SYNC_TABLE_PREFIX). Utils take explicit
arguments first and fall back to these.

Settings with a single user are declared beside it, on this module's `EnvSettings` and `load`,
and its docstring lists them: HASURA_GRAPHQL_* / GRAPHQL_* in `utils/graphql_util.py`, API_CALL_*
in `utils/api_call.py`, EVENT_STORE_* in `utils/event_store.py`, MYSQL_* in `utils/mysql_sync.py`,
MSSQL_* in `utils/mssql_sync.py`, DB_BRIDGE_BATCH_SIZE in `utils/db_bridge.py`, and dbt's
(DBT_PROJECT_DIR, DBT_PROFILES_DIR, DATAPLATFORM_DBT_FORK) in `dataplatform/dbt/settings.py`.

| env var                      | default                                      | read by          |
|------------------------------|----------------------------------------------|------------------|
| APP_ROOT                     | the repository root (derived from this file) | paths            |
| DATAPLATFORM_PROJECT_DIR     | $APP_ROOT/.project                           | paths            |
| CONNECTORS_DIR               | $APP_ROOT/data-manager/external-connectors   | paths            |
| POSTGRES_HOST                | 127.0.0.1                                    | postgres         |
| POSTGRES_PORT                | 5432                                         | postgres         |
| POSTGRES_USER                | postgres                                     | postgres         |
| POSTGRES_PASSWORD            | (empty)                                      | postgres         |
| POSTGRES_PASSWORD_FILE       | (unset) a file holding it, if it is unset    | postgres         |
| POSTGRES_DB                  | dataplatform                                 | postgres         |
| CACHE_SCHEMA                 | pyairbyte_cache                              | cache            |
| <P>POSTGRES_*, <P>CACHE_SCHEMA | a named cache's (e.g. P=SWEDEN_) overrides | cache            |
| SYNC_MAX_SECONDS             | 3600 (0: no limit)                           | pyairbyte_sync   |
| SYNC_MAX_RECORDS             | 0 (no limit)                                 | pyairbyte_sync   |
| SYNC_STOP_GRACE_SECONDS      | 15                                           | pyairbyte_sync   |
| SYNC_PROGRESS_SECONDS        | 10 (0: no progress lines)                    | pyairbyte_sync   |
| MYSQL_SYNC_CACHE_SCHEMA      | pyairbyte_cache                              | mysql location   |
| MYSQL_SYNC_TABLE_PREFIX      | mysql_ (set but empty: no prefix)            | mysql location   |
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pyairbyte.errors import SettingsError

# data-manager/pyairbyte/settings.py -> the repository root is two levels above data-manager.
_DERIVED_APP_ROOT = Path(__file__).resolve().parents[2]

# --- one parser per kind of value -----------------------------------------------------------

Port = Annotated[int, Field(ge=1, le=65535)]
PositiveInt = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(gt=0)]
NonNegativeSeconds = Annotated[float, Field(ge=0)]
ResolvedPath = Annotated[Path, AfterValidator(lambda p: p.expanduser().resolve())]


class EnvSettings(BaseSettings):
    """The base of every settings class read through `load`."""

    # Empty values count as unset (e.g. `POSTGRES_PASSWORD=` in a compose file); no .env files.
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)


_S = TypeVar("_S", bound=EnvSettings)


def _field_and_env_name(cls: type[EnvSettings], loc: str, prefix: str) -> tuple[str, str]:
    """(field name, env var) for an error location, which is the alias for aliased fields."""
    for field, info in cls.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        if loc in (field, alias):
            return field, alias or f"{prefix}{field}".upper()
    return loc, f"{prefix}{loc}".upper()


def load(cls: type[_S], *, env_prefix: str | None = None) -> _S:
    """Build `cls` from env; a bad value becomes a SettingsError naming the variable."""
    prefix = cls.model_config.get("env_prefix", "") if env_prefix is None else env_prefix
    try:
        return cls(_env_prefix=prefix) if env_prefix is not None else cls()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field, name = _field_and_env_name(cls, str(error["loc"][0]), prefix)
            info = cls.model_fields.get(field)
            default = info.default if info is not None else None
            example = f", e.g. {name}={default}" if default not in (None, "") else ""
            problems.append(
                f"env {name}={error.get('input')!r}: {error['msg']}. "
                f"Fix: set {name} to a valid value{example}, or unset it for the default"
            )
        raise SettingsError("; ".join(problems)) from None


# --- paths ----------------------------------------------------------------------------------


class PathSettings(EnvSettings):
    app_root: ResolvedPath = Field(_DERIVED_APP_ROOT, validation_alias="APP_ROOT")
    project_dir: ResolvedPath | None = Field(None, validation_alias="DATAPLATFORM_PROJECT_DIR")
    connectors_dir: ResolvedPath | None = Field(None, validation_alias="CONNECTORS_DIR")


def path_settings() -> PathSettings:
    return load(PathSettings)


def app_root() -> Path:
    return path_settings().app_root


def project_dir() -> Path:
    """One gitignored directory for everything the platform writes at run time.

    Connector venvs, PyAirbyte logs and staging files, the local PostgreSQL cluster and
    DAGSTER_HOME all live here, never in the current working directory or /tmp.
    """
    paths = path_settings()
    return paths.project_dir or paths.app_root / ".project"


def connectors_dir() -> Path:
    paths = path_settings()
    return paths.connectors_dir or paths.app_root / "data-manager" / "external-connectors"


def code_locations_file() -> Path:
    return app_root() / "data-manager" / "resources" / "dagster" / "code-locations.json"


# --- PostgreSQL and the named caches --------------------------------------------------------


class PostgresSettings(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="POSTGRES_")

    host: str = "127.0.0.1"
    port: Port = 5432
    user: str = "postgres"
    password: str = Field("", repr=False)
    password_file: str | None = Field(None, repr=False)
    db: str = "dataplatform"

    @property
    def dbname(self) -> str:
        return self.db

    def psycopg2_kwargs(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.db,
        }


class _PostgresOverrides(EnvSettings):
    """A named cache's own POSTGRES_* values (e.g. SWEDEN_POSTGRES_HOST); unset ones fall back."""

    host: str | None = None
    port: Port | None = None
    user: str | None = None
    password: str | None = Field(None, repr=False)
    db: str | None = None


class _CacheSchema(EnvSettings):
    cache_schema: str | None = None


def _with_password_file(base: PostgresSettings) -> PostgresSettings:
    """POSTGRES_PASSWORD from POSTGRES_PASSWORD_FILE when only the file is set.

    In containers the password is a secret file (docker-compose.yaml). The image's entrypoint
    exports it for the processes it starts, but `docker compose exec data-manager dataplatform
    ...` does not pass through the entrypoint.
    """
    if base.password or not base.password_file:
        return base
    try:
        password = Path(base.password_file).read_text(encoding="utf-8").rstrip("\n")
    except OSError as exc:
        raise SettingsError(
            f"env POSTGRES_PASSWORD_FILE={base.password_file!r}: cannot read it "
            f"({exc.strerror}). Fix: point it at a readable file, or set POSTGRES_PASSWORD"
        ) from None
    return base.model_copy(update={"password": password})


def postgres_settings(env_prefix: str = "") -> PostgresSettings:
    """POSTGRES_*; with env_prefix (e.g. "SWEDEN_"), <prefix>POSTGRES_* override them one by one."""
    base = _with_password_file(load(PostgresSettings))
    if not env_prefix:
        return base
    overrides = load(_PostgresOverrides, env_prefix=f"{env_prefix}POSTGRES_")
    return base.model_copy(update=overrides.model_dump(exclude_none=True))


def cache_schema(env_prefix: str = "", default: str = "pyairbyte_cache") -> str:
    """<prefix>CACHE_SCHEMA, e.g. CACHE_SCHEMA or SWEDEN_CACHE_SCHEMA."""
    return load(_CacheSchema, env_prefix=env_prefix).cache_schema or default


# --- connector syncs -----------------------------------------------------------------------


class SyncLimitSettings(EnvSettings):
    """Bounds of one `sync_connector` call; 0 means no limit.

    The time limit covers the whole sync (connector start, check, read and load), so a source
    whose paginator never ends, or that never answers, fails instead of running forever. After
    the limit, the sync waits `stop_grace_seconds` for the read to stop and roll back.
    """

    model_config = SettingsConfigDict(env_prefix="SYNC_")

    max_seconds: NonNegativeSeconds = 3600.0
    max_records: Count = 0
    stop_grace_seconds: NonNegativeSeconds = 15.0
    # How often a running sync reports records and records/s per stream (0: never).
    progress_seconds: NonNegativeSeconds = 10.0


def sync_limit_settings() -> SyncLimitSettings:
    return load(SyncLimitSettings)


# --- the mysql_tables_sync location ---------------------------------------------------------


class MySqlSyncTarget(EnvSettings):
    """Where the mysql_tables_sync location puts the copies."""

    # Here an empty value is a value: MYSQL_SYNC_TABLE_PREFIX= means no prefix.
    model_config = SettingsConfigDict(env_ignore_empty=False)

    cache_schema: str = Field("pyairbyte_cache", validation_alias="MYSQL_SYNC_CACHE_SCHEMA")
    table_prefix: str = Field("mysql_", validation_alias="MYSQL_SYNC_TABLE_PREFIX")


def mysql_sync_target() -> MySqlSyncTarget:
    return load(MySqlSyncTarget)
