"""The platform's settings: one typed class per area, read from env when a function asks.

    from dataplatform import settings
    settings.supervisor().backoff_max          # a fresh read of the environment each call

Nothing here reads env at import time, so a test or a parent process that changes the
environment is honoured by the next call. A bad value raises SettingsError, which names the
variable, the value and a value that works.

Paths that only depend on the repository layout (app root, project dir, PostgreSQL) stay in
`pyairbyte.settings`, dbt's are in `dataplatform.dbt.settings`; these are the platform's own.

| area           | env var                         | default                             |
|----------------|---------------------------------|-------------------------------------|
| paths          | DATAPLATFORM_PLATFORM_DIR       | <project dir>/platform              |
|                | CODE_LOCATIONS_FILE             | the repository's code-locations.json |
| supervisor     | DAGSTER_GRPC_BIND_HOST          | 127.0.0.1 (0.0.0.0 in containers)   |
|                | DAGSTER_INIT_CHILD_OUTPUT       | file (inherit in containers)        |
|                | DAGSTER_INIT_HOST               | unset: every entry's host           |
|                | DAGSTER_GRPC_STARTUP_TIMEOUT    | 180 seconds                         |
|                | DAGSTER_INIT_BACKOFF_MAX        | 30 seconds                          |
|                | DAGSTER_INIT_LOAD_ERROR_RETRIES | 2                                   |
|                | DAGSTER_INIT_MODE               | fork (or process: plain processes)  |
|                | DAGSTER_INIT_PRELOAD            | dagster,dagster_dbt,dbt.cli.main,   |
|                |                                 | dbt.adapters.postgres,airbyte       |
|                | DAGSTER_INIT_WARM_RUNS          | true (fork mode: runs forked warm)  |
| webserver and  | DAGSTER_GRPC_WATCH_SECONDS      | 10 (Dagster's own: 1)               |
| daemon         |                                 |                                     |
| local platform | DAGSTER_WEBSERVER_HOST          | 127.0.0.1                           |
|                | DAGSTER_WEBSERVER_PORT          | 3030                                |
| container      | DATAPLATFORM_SHARED_WORKSPACE   | unset: none; compose sets           |
| workspace      |                                 | /app/.project/shared/workspace.yaml |
|                | DAGSTER_WEBSERVER_URL           | http://<DAGSTER_WEBSERVER_HOST>:    |
|                |                                 | <DAGSTER_WEBSERVER_PORT>; compose   |
|                |                                 | sets http://dagster-webserver:3030  |
| local postgres | POSTGRES_HOST                   | unset: run a private cluster        |
|                | POSTGRES_DB                     | dataplatform                        |
|                | LOCAL_PG_PORT                   | 5433                                |
|                | PG_BIN                          | found on PATH or in Debian's dirs   |
|                | LOCAL_PG_OS_USER                | postgres (when running as root)     |
| make up        | SAMPLE_API_PORT                 | 8765                                |
|                | SAMPLE_RUN_TIMEOUT              | 900 seconds                         |
|                | UP_JOBS                         | the sample jobs (see local/up.py)   |
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pyairbyte import settings as project_settings

Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]
WebUrl = Annotated[str, Field(pattern=r"^https?://[^/\s]+(/\S*)?$")]


class SettingsError(ValueError):
    """A setting in env has a value that cannot be used; the message says which and the fix."""


class _Area(BaseSettings):
    # Each field's alias is its env var, exactly as documented; an empty value counts as unset
    # (as `${X:-}` in the shell scripts passes it), and other env vars are none of our business.
    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True,
        populate_by_name=True,
    )  # fmt: skip


class PathSettings(_Area):
    platform_dir: Path | None = Field(None, alias="DATAPLATFORM_PLATFORM_DIR")
    code_locations_file: Path | None = Field(None, alias="CODE_LOCATIONS_FILE")

    def resolved_platform_dir(self) -> Path:
        """Where the running platform keeps pid files, logs and DAGSTER_HOME."""
        if self.platform_dir is not None:
            return self.platform_dir.expanduser().resolve()
        return project_settings.project_dir() / "platform"

    def resolved_code_locations_file(self) -> Path:
        if self.code_locations_file is not None:
            return self.code_locations_file.expanduser().resolve()
        return project_settings.code_locations_file()


class SupervisorSettings(_Area):
    """dagster-init: where its code servers listen and how patiently it restarts them."""

    bind_host: str = Field("127.0.0.1", alias="DAGSTER_GRPC_BIND_HOST")
    child_output: Literal["file", "inherit"] = Field("file", alias="DAGSTER_INIT_CHILD_OUTPUT")
    # Serve only the code-locations.json entries whose `host` is this (sharding across hosts).
    host_filter: str | None = Field(None, alias="DAGSTER_INIT_HOST")
    startup_timeout: Seconds = Field(180.0, alias="DAGSTER_GRPC_STARTUP_TIMEOUT")
    backoff_max: Seconds = Field(30.0, alias="DAGSTER_INIT_BACKOFF_MAX")
    load_error_retries: Annotated[int, Field(ge=0)] = Field(
        2, alias="DAGSTER_INIT_LOAD_ERROR_RETRIES"
    )
    # fork: code servers forked from one pre-loaded parent (dataplatform.runtime.forkserver);
    # process: one plain `dagster api grpc` process each (debugging, fallback).
    mode: Literal["fork", "process"] = Field("fork", alias="DAGSTER_INIT_MODE")
    # Libraries the fork parent imports once; never a code location's own modules.
    # dbt's entry point and adapter: warm runs fork dbt rather than start it (lib/dbt_fork.py).
    preload: str = Field(
        "dagster,dagster_dbt,dbt.cli.main,dbt.adapters.postgres,airbyte",
        alias="DAGSTER_INIT_PRELOAD",
    )
    # Fork mode: a code server's runs are forks of a process with its location loaded
    # (dataplatform.runtime.warm_runs); false: Dagster's spawned run workers.
    warm_runs: bool = Field(True, alias="DAGSTER_INIT_WARM_RUNS")

    def preload_modules(self) -> list[str]:
        """The libraries to pre-load; "none" for dagster alone (quicker start, more memory)."""
        names = [name.strip() for name in self.preload.split(",") if name.strip()]
        return [] if names == ["none"] else names


class GrpcWatchSettings(_Area):
    """How often the webserver and daemon poll each code server (runtime/grpc_watch.py)."""

    interval: Seconds = Field(10.0, alias="DAGSTER_GRPC_WATCH_SECONDS")


class LocalPlatformSettings(_Area):
    """Local mode's webserver address."""

    webserver_host: str = Field("127.0.0.1", alias="DAGSTER_WEBSERVER_HOST")
    webserver_port: Port = Field(3030, alias="DAGSTER_WEBSERVER_PORT")


class SharedWorkspaceSettings(_Area):
    """Container mode: the workspace dagster-init writes for a webserver and daemon elsewhere.

    The webserver and daemon containers cannot see the data-manager's files, so dagster-init
    writes their workspace (hosts from code-locations.json, e.g. data-manager) to a volume they
    mount, at start and after each live change, then asks the webserver to re-read it.
    """

    shared_workspace: Path | None = Field(
        None,
        alias="DATAPLATFORM_SHARED_WORKSPACE",
        examples=["/app/.project/shared/workspace.yaml"],
    )
    # Used only with a shared workspace: the local platform records its own in platform.json.
    webserver_url: WebUrl | None = Field(
        None, alias="DAGSTER_WEBSERVER_URL", examples=["http://dagster-webserver:3030"]
    )

    def resolved_shared_workspace(self) -> Path | None:
        if self.shared_workspace is None:
            return None
        return self.shared_workspace.expanduser().resolve()

    def resolved_webserver_url(self) -> str:
        """The webserver whose reloadWorkspace the reconcile calls (without a trailing /)."""
        if self.webserver_url is not None:
            return self.webserver_url.rstrip("/")
        local = local_platform()
        return f"http://{local.webserver_host}:{local.webserver_port}"


class LocalPostgresSettings(_Area):
    """Local mode's database: a configured server, or else a private cluster we run."""

    # Only whether it is set matters here; pyairbyte.settings.postgres_settings() reads the rest.
    external_host: str | None = Field(None, alias="POSTGRES_HOST")
    # The database created in the private cluster (the same default as pyairbyte.settings).
    dbname: str = Field("dataplatform", alias="POSTGRES_DB")
    port: Port = Field(5433, alias="LOCAL_PG_PORT")  # beside a system PostgreSQL on 5432
    pg_bin: Path | None = Field(None, alias="PG_BIN")
    os_user: str = Field("postgres", alias="LOCAL_PG_OS_USER")


class UpSettings(_Area):
    """`make up`: the sample API's port and how long the sample runs may take."""

    sample_api_port: Port = Field(8765, alias="SAMPLE_API_PORT")
    run_timeout: Seconds = Field(900.0, alias="SAMPLE_RUN_TIMEOUT")
    # "loc/job,loc/job;loc/job": ';' separates waves (parsed by local/up.py's run_waves).
    jobs: str = Field("", alias="UP_JOBS")


_A = TypeVar("_A", bound=_Area)


def _read(area: type[_A]) -> _A:
    try:
        return area()
    except ValidationError as exc:
        raise SettingsError(_explain(area, exc)) from None


def _explain(area: type[_Area], exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        field = next((f for f in area.model_fields.values() if f.alias == name), None)
        example = None if field is None else field.default
        if example is None and field is not None and field.examples:
            example = field.examples[0]
        if example is None:
            fix = f"set {name} to a valid value, or unset it"
        elif field.default is None:
            fix = f"set e.g. {name}={example}, or unset it"
        else:
            fix = f"set e.g. {name}={example}, or unset it for that default"
        lines.append(f"env {name}={error.get('input')!r}: {error['msg']}; fix: {fix}")
    return "\n".join(lines)


def paths() -> PathSettings:
    return _read(PathSettings)


def supervisor() -> SupervisorSettings:
    return _read(SupervisorSettings)


def grpc_watch() -> GrpcWatchSettings:
    return _read(GrpcWatchSettings)


def local_platform() -> LocalPlatformSettings:
    return _read(LocalPlatformSettings)


def shared_workspace() -> SharedWorkspaceSettings:
    return _read(SharedWorkspaceSettings)


def local_postgres() -> LocalPostgresSettings:
    return _read(LocalPostgresSettings)


def up() -> UpSettings:
    return _read(UpSettings)
