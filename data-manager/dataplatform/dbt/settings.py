"""dbt's settings, read from env at each call (through pyairbyte.settings' one loader).

| env var                | default                                 |
|------------------------|-----------------------------------------|
| DBT_PROJECT_DIR        | $APP_ROOT/dbt_models                    |
| DBT_PROFILES_DIR       | $DBT_PROJECT_DIR                        |
| DATAPLATFORM_DBT_FORK  | true (dbt forked in a warm run worker)  |
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from pyairbyte import settings


class DbtSettings(settings.EnvSettings):
    project_dir: settings.ResolvedPath | None = Field(None, validation_alias="DBT_PROJECT_DIR")
    profiles_dir: settings.ResolvedPath | None = Field(None, validation_alias="DBT_PROFILES_DIR")
    # In a warm run worker, run dbt as its fork (dagster_code/lib/dbt_fork.py); false: always
    # dagster-dbt's `dbt` subprocess.
    fork: bool = Field(True, validation_alias="DATAPLATFORM_DBT_FORK")


def dbt_settings() -> DbtSettings:
    return settings.load(DbtSettings)


def project_dir() -> Path:
    return dbt_settings().project_dir or settings.app_root() / "dbt_models"


def profiles_dir() -> Path:
    return dbt_settings().profiles_dir or project_dir()
