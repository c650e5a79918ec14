"""A connector YAML's `python:`: the interpreter of the connector's venv, and start-up crashes.

The slow tests use a real connector from PyPI whose CDK needs an older Python:
airbyte-source-coin-api 0.2.16 pins airbyte-cdk 0.80.0, which does not import on Python 3.11
(`ValueError: mutable default <class '...JsonDecoder'> for field _decoder is not allowed`).
Its venv goes under the project's connectors directory (.project/connectors), as in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyairbyte.errors import ConnectorConfigError
from pyairbyte.utils.connector_config import load_connector_file
from pyairbyte.utils.interpreters import find_interpreters, interpreter_minor, resolve_python

PYTHON_310 = find_interpreters("3.10")
needs_310 = pytest.mark.skipif(not PYTHON_310, reason="no Python 3.10 on this machine")

COIN_API = """\
version: 1
name: source-coin-api
connector_type: source
pip_url: airbyte-source-coin-api==0.2.16
{python}config:
  api_key: not-a-real-key
  environment: sandbox
  symbol_id: BITSTAMP_SPOT_BTC_USD
  period: 1DAY
  start_date: "2024-01-01T00:00:00"
"""


def _yaml(tmp_path: Path, python_line: str = "", **extra: str) -> Path:
    path = tmp_path / "coin.yaml"
    path.write_text(COIN_API.format(python=python_line) + "".join(extra.values()))
    return path


# ---- the field --------------------------------------------------------------------------------


@needs_310
def test_a_version_resolves_to_an_installed_interpreter(tmp_path):
    connector = load_connector_file(_yaml(tmp_path, 'python: "3.10"\n'))
    assert connector.python == "3.10"
    interpreter = resolve_python(connector.python, connector.path)
    assert interpreter_minor(interpreter) == "3.10"
    exact = PYTHON_310[0].version_text
    assert interpreter_minor(resolve_python(exact, connector.path)) == "3.10"


@needs_310
def test_a_path_is_taken_as_it_is(tmp_path):
    path = PYTHON_310[0].path
    connector = load_connector_file(_yaml(tmp_path, f"python: {path}\n"))
    assert resolve_python(connector.python, connector.path) == path


def test_an_unknown_version_names_file_field_and_the_interpreters_found(tmp_path):
    connector = load_connector_file(_yaml(tmp_path, 'python: "3.99"\n'))
    with pytest.raises(ConnectorConfigError) as raised:
        resolve_python(connector.python, connector.path)
    message = str(raised.value)
    assert str(connector.path) in message and "field 'python'" in message
    assert "no Python 3.99 is installed" in message and "interpreters found:" in message
    for interpreter in find_interpreters():
        assert str(interpreter.path) in message
    assert "never downloaded" in message


def test_a_missing_interpreter_path_is_refused(tmp_path):
    connector = load_connector_file(_yaml(tmp_path, "python: /nowhere/bin/python3.10\n"))
    with pytest.raises(ConnectorConfigError, match=r"field 'python': /nowhere/bin/python3.10 "):
        resolve_python(connector.python, connector.path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("python: 3.10\n", "is a number (YAML reads 3.10 as 3.1)"),
        ("python: [3]\n", "expected a version or a path"),
        ("python: latest\n", "neither a version"),
    ],
)
def test_bad_python_values_name_the_field_and_the_fix(tmp_path, line, expected):
    with pytest.raises(ConnectorConfigError, match="field 'python'") as raised:
        load_connector_file(_yaml(tmp_path, line))
    assert expected in str(raised.value)


def test_python_is_refused_for_a_declarative_manifest(tmp_path):
    (tmp_path / "m.yaml").write_text("version: 6.0.0\nstreams: []\n")
    path = tmp_path / "decl.yaml"
    path.write_text(
        "version: 1\nname: source-decl\nconnector_type: source\nsource_manifest: m.yaml\n"
        'python: "3.10"\nconfig: {}\n'
    )
    with pytest.raises(ConnectorConfigError, match="field 'python': a declarative manifest"):
        load_connector_file(path)


# ---- a real connector whose CDK needs an older Python -----------------------------------------


@pytest.fixture
def coin_api(tmp_path, monkeypatch, project_env):
    """(python line) -> the connector YAML dir holds source-coin-api with that `python:`."""
    from pyairbyte.utils.airbyte_env import configure_airbyte_environment

    configure_airbyte_environment()
    monkeypatch.setenv("CONNECTORS_DIR", str(tmp_path))
    return lambda python_line="": _yaml(tmp_path, python_line)


@pytest.mark.slow
@needs_310
def test_old_cdk_connector_crashes_at_start_up_on_3_11_and_runs_with_python_3_10(coin_api):
    from pyairbyte.utils.airbyte_env import connector_install_root
    from pyairbyte.utils.pyairbyte_sync import build_source, sync_connector

    # Without `python:` the venv is the platform's Python, and the connector cannot import.
    coin_api()
    result = sync_connector("source-coin-api", max_seconds=300)
    error = result["error"]
    print(error)
    assert result["status"] == "error"
    assert "connector source-coin-api exited with code 1 at start-up" in error
    assert "mutable default" in error and "JsonDecoder" in error  # its traceback's last lines
    assert "source-coin-api-stderr.log" in error
    assert "Hint: this is an import-time failure" in error and 'python: "3.10"' in error
    assert "fix the connector's config" not in error and "credentials" not in error

    # With `python: "3.10"` the venv is made again with 3.10: the connector starts and discovers.
    path = coin_api('python: "3.10"\n')
    source = build_source(load_connector_file(path))
    venv = connector_install_root() / ".venv-source-coin-api"
    assert "version_info = 3.10." in (venv / "pyvenv.cfg").read_text()
    assert "ohlcv_historical_data" in source.get_available_streams()

    # Its check cannot reach the real API from here: that fails as a network problem (or runs
    # into the time limit while the CDK retries), never as a start-up crash.
    result = sync_connector("source-coin-api", max_seconds=10)
    print(result["error"])
    assert result["status"] == "error"
    assert "at start-up" not in result["error"] and "mutable default" not in result["error"]
