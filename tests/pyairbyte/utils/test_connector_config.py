"""Connector YAML validation: each mistake gets its own message naming file, field and fix, and a
sync with a bad YAML writes nothing to the database."""

from __future__ import annotations

import textwrap

import pytest

from pyairbyte.utils.connector_config import (
    ConnectorConfigError,
    get_connector_by_name,
    load_connector_file,
)
from pyairbyte.utils.pyairbyte_sync import sync_connector
from tests.helpers import scalar

VALID = """
version: 1
name: source-test-api
connector_type: source
source_manifest: manifests/items.yaml
streams: [items]
config:
  base_url: ${TEST_API_URL:-http://127.0.0.1:9}
  api_key: ${TEST_API_KEY}
  page_size: ${TEST_PAGE_SIZE:-25}
  literal: "costs $${PRICE}"
"""
MANIFEST = "version: 6.0.0\ntype: DeclarativeSource\nstreams: []\n"


@pytest.fixture
def connectors_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTORS_DIR", str(tmp_path))
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "items.yaml").write_text(MANIFEST)
    return tmp_path


def write(directory, text: str, name: str = "test-api.yaml"):
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_yaml_interpolates_env(connectors_dir, monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", "secret-from-env")
    write(connectors_dir, VALID)
    connector = get_connector_by_name("source_test_api")  # '-' and '_' are interchangeable
    assert connector.config == {
        "base_url": "http://127.0.0.1:9",
        "api_key": "secret-from-env",
        "page_size": 25,
        "literal": "costs ${PRICE}",
    }
    assert connector.is_declarative and connector.streams == ["items"]
    assert connector.env_vars == ("TEST_API_KEY", "TEST_API_URL", "TEST_PAGE_SIZE")


def test_leading_zero_values_stay_strings(connectors_dir, monkeypatch):
    monkeypatch.setenv("TEST_API_KEY", "000123")
    write(connectors_dir, VALID)
    assert get_connector_by_name("source-test-api").config["api_key"] == "000123"


@pytest.mark.parametrize(
    ("edit", "field", "expected"),
    [
        (
            lambda t: t.replace("name: source-test-api\n", ""),
            "name",
            "field 'name': missing required field. Fix: add `name:`",
        ),
        (
            lambda t: t + "schedules: daily\n",  # a typo of schedule:
            "schedules",
            "field 'schedules': unknown key 'schedules'. Fix: remove it or use one of: version, "
            "name, connector_type, config, image",
        ),
        (
            lambda t: t.replace("items.yaml", "missing-manifest.yaml"),
            "source_manifest",
            "missing-manifest.yaml does not exist. Fix: create the manifest, or correct the path",
        ),
        (
            lambda t: t,  # TEST_API_KEY is not set
            "config.api_key",
            "field 'config.api_key': environment variable TEST_API_KEY is not set and has no "
            "default. Fix: export TEST_API_KEY=<value>, or write ${TEST_API_KEY:-<default>}",
        ),
        (
            lambda t: t.replace("connector_type: source", "connector_type: destination"),
            "connector_type",
            "unsupported connector_type 'destination'. Fix: set `connector_type: source`",
        ),
    ],
    ids=["missing-name", "unknown-key", "missing-manifest", "unset-variable", "bad-type"],
)
def test_bad_yaml_names_file_field_and_fix(connectors_dir, monkeypatch, edit, field, expected):
    monkeypatch.delenv("TEST_API_KEY", raising=False)
    path = write(connectors_dir, edit(VALID))
    with pytest.raises(ConnectorConfigError) as info:
        load_connector_file(path)
    assert info.value.field == field
    assert str(info.value).startswith(f"{path}: field '{field}'")
    assert expected in str(info.value)


def test_sync_with_bad_yaml_writes_nothing(pg, pg_conn, connectors_dir, monkeypatch):
    """The sync reports the YAML's error, and no schema or table is created."""
    monkeypatch.setenv("CACHE_SCHEMA", "bad_yaml_cache")
    monkeypatch.delenv("TEST_API_KEY", raising=False)
    path = write(connectors_dir, VALID)
    result = sync_connector("source-test-api")
    assert result["status"] == "error"
    assert result["error"].startswith(f"{path}: field 'config.api_key'")
    assert scalar(pg_conn, "select to_regnamespace('bad_yaml_cache') is null")


def test_unknown_connector_lists_what_exists(connectors_dir):
    write(connectors_dir, VALID)
    with pytest.raises(ConnectorConfigError, match=r"has name 'nope' \(files: test-api.yaml\)"):
        get_connector_by_name("nope")
