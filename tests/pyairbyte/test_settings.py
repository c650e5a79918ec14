"""The settings layer: read at call time, one parser per kind of value, errors that name the fix.

No services needed."""

from __future__ import annotations

import pytest

from pyairbyte import settings
from pyairbyte.errors import SettingsError
from pyairbyte.utils.api_call import api_call_settings
from pyairbyte.utils.event_store import event_store_settings
from pyairbyte.utils.graphql_util import graphql_settings
from pyairbyte.utils.mysql_sync import mysql_settings


def test_values_are_read_when_called(monkeypatch):
    monkeypatch.setenv("POSTGRES_PORT", "6543")
    monkeypatch.setenv("POSTGRES_DB", "other")
    pg = settings.postgres_settings()
    assert (pg.port, pg.dbname, pg.psycopg2_kwargs()["dbname"]) == (6543, "other", "other")
    monkeypatch.setenv("POSTGRES_PORT", "7000")
    assert settings.postgres_settings().port == 7000


def test_empty_means_default_and_prefixed_values_fall_back(monkeypatch):
    monkeypatch.setenv("GRAPHQL_MAX_RETRIES", "")
    monkeypatch.setenv("POSTGRES_HOST", "db.example")
    monkeypatch.setenv("SWEDEN_POSTGRES_PORT", "5499")
    monkeypatch.setenv("SWEDEN_CACHE_SCHEMA", "sweden_x")
    assert graphql_settings().max_retries == 3
    sweden = settings.postgres_settings("SWEDEN_")
    assert (sweden.host, sweden.port) == ("db.example", 5499)
    assert settings.cache_schema("SWEDEN_", "unused") == "sweden_x"
    monkeypatch.delenv("CACHE_SCHEMA", raising=False)
    assert settings.cache_schema() == "pyairbyte_cache"


def test_paths_derive_from_app_root(monkeypatch, tmp_path):
    for name in ("DATAPLATFORM_PROJECT_DIR", "CONNECTORS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ROOT", str(tmp_path))
    assert settings.project_dir() == tmp_path.resolve() / ".project"
    assert settings.connectors_dir() == tmp_path.resolve() / "data-manager" / "external-connectors"


@pytest.mark.parametrize(
    ("name", "value", "build", "fix"),
    [
        ("POSTGRES_PORT", "abc", settings.postgres_settings, "POSTGRES_PORT=5432"),
        ("EVENT_STORE_BATCH_SIZE", "0", event_store_settings, "=1000"),
        ("GRAPHQL_TIMEOUT_SECONDS", "soon", graphql_settings, "=30.0"),
        ("API_CALL_RESPONSE_MAX_CHARS", "0", api_call_settings, "=2000"),
        ("MYSQL_SYNC_BATCH_SIZE", "-5", mysql_settings, "=10000"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_fix(monkeypatch, name, value, build, fix):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=rf"env {name}='{value}'.*Fix: set {name}.*{fix}"):
        build()


def test_secrets_stay_out_of_reprs(monkeypatch):
    monkeypatch.setenv("POSTGRES_PASSWORD", "hunter2")
    monkeypatch.setenv("HASURA_GRAPHQL_ADMIN_SECRET", "s3cret")
    assert "hunter2" not in repr(settings.postgres_settings())
    assert "s3cret" not in repr(graphql_settings())


def test_an_empty_mysql_table_prefix_means_no_prefix(monkeypatch):
    monkeypatch.setenv("MYSQL_SYNC_TABLE_PREFIX", "")
    assert settings.mysql_sync_target().table_prefix == ""
    monkeypatch.delenv("MYSQL_SYNC_TABLE_PREFIX")
    assert settings.mysql_sync_target().table_prefix == "mysql_"
