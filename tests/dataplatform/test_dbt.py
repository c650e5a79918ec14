"""dataplatform.dbt: dbt's settings follow APP_ROOT at call time, and the manifest counts as
stale exactly when a file dbt parses is newer than it. No services, no dbt run."""

from __future__ import annotations

import os

from dataplatform.dbt import settings as dbt_settings
from dataplatform.dbt.manifest import is_stale, manifest_path


def test_paths_derive_from_app_root_unless_set(monkeypatch, tmp_path):
    for name in ("DBT_PROJECT_DIR", "DBT_PROFILES_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ROOT", str(tmp_path))
    assert dbt_settings.project_dir() == tmp_path.resolve() / "dbt_models"
    assert dbt_settings.profiles_dir() == tmp_path.resolve() / "dbt_models"
    monkeypatch.setenv("DBT_PROJECT_DIR", str(tmp_path / "other"))
    assert dbt_settings.profiles_dir() == (tmp_path / "other").resolve()
    monkeypatch.setenv("DBT_PROFILES_DIR", str(tmp_path / "profiles"))
    assert dbt_settings.profiles_dir() == (tmp_path / "profiles").resolve()


def test_the_manifest_is_stale_when_missing_or_older_than_a_model(monkeypatch, tmp_path):
    monkeypatch.setenv("DBT_PROJECT_DIR", str(tmp_path))
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "a.sql"
    model.write_text("select 1")
    assert manifest_path() == tmp_path.resolve() / "target" / "manifest.json"
    assert is_stale()  # no manifest yet
    manifest = manifest_path()
    manifest.parent.mkdir()
    manifest.write_text("{}")
    os.utime(model, (1_000, 1_000))
    os.utime(tmp_path / "models", (1_000, 1_000))
    os.utime(manifest, (2_000, 2_000))
    assert not is_stale()
    os.utime(model, (3_000, 3_000))  # a model edited after the parse
    assert is_stale()
    os.utime(model, (1_000, 1_000))
    os.utime(tmp_path / "models", (3_000, 3_000))  # a model deleted: only the dir changes
    assert is_stale()
