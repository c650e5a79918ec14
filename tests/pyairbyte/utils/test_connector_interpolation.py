"""`${VAR}`, `${VAR:-default}` and `$${` in connector YAMLs: what each becomes, and the error that
names the field when a variable is missing. Files in tmp_path only: no services."""

from __future__ import annotations

import textwrap

import pytest

from pyairbyte.utils.connector_config import ConnectorConfigError, load_connector_file


def load(tmp_path, config: str, extra: str = ""):
    path = tmp_path / "source-x.yaml"
    path.write_text(
        "version: 1\nname: source-x\nconnector_type: source\n"
        + extra
        + "config:\n"
        + textwrap.indent(textwrap.dedent(config), "  ")
    )
    return load_connector_file(path)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("X_TOKEN", "X_COUNT", "X_FLAG", "X_HOST", "X_VERSION"):
        monkeypatch.delenv(name, raising=False)


def test_a_set_variable_is_substituted(tmp_path, monkeypatch):
    monkeypatch.setenv("X_TOKEN", "s3cret")
    connector = load(tmp_path, "token: ${X_TOKEN}\nheader: Bearer ${X_TOKEN}\n")
    assert connector.config == {"token": "s3cret", "header": "Bearer s3cret"}
    assert connector.env_vars == ("X_TOKEN",)


def test_the_default_applies_only_when_the_variable_is_unset(tmp_path, monkeypatch):
    text = "host: ${X_HOST:-localhost}\nempty: ${X_TOKEN:-}\n"
    assert load(tmp_path, text).config == {"host": "localhost", "empty": ""}
    monkeypatch.setenv("X_HOST", "db.internal")
    monkeypatch.setenv("X_TOKEN", "")  # set but empty is still set
    assert load(tmp_path, text).config == {"host": "db.internal", "empty": ""}


def test_a_default_may_contain_colons_and_slashes(tmp_path):
    connector = load(tmp_path, "url: ${X_HOST:-http://127.0.0.1:9/api}\n")
    assert connector.config == {"url": "http://127.0.0.1:9/api"}


def test_a_whole_value_that_expands_to_an_integer_or_boolean_gets_that_type(tmp_path, monkeypatch):
    monkeypatch.setenv("X_COUNT", "1000")
    connector = load(
        tmp_path,
        """\
        count: ${X_COUNT}
        negative: ${X_MISSING_N:--5}
        flag: ${X_FLAG:-true}
        disabled: ${X_FLAG:-false}
        padded: ${X_MISSING_P:-007}
        decimal: ${X_MISSING_D:-1.5}
        inside: page ${X_COUNT}
        """,
    )
    assert connector.config == {
        "count": 1000,
        "negative": -5,
        "flag": True,
        "disabled": False,
        "padded": "007",  # a leading zero is data (a code, an id), not a number
        "decimal": "1.5",
        "inside": "page 1000",
    }


def test_double_dollar_is_a_literal_and_is_never_typed(tmp_path, monkeypatch):
    monkeypatch.setenv("X_TOKEN", "t")
    connector = load(
        tmp_path,
        """\
        price: "costs $${PRICE}"
        alone: "$${X_TOKEN}"
        mixed: "$${X_TOKEN}=${X_TOKEN}"
        """,
    )
    assert connector.config == {
        "price": "costs ${PRICE}",
        "alone": "${X_TOKEN}",
        "mixed": "${X_TOKEN}=t",
    }
    assert connector.env_vars == ("X_TOKEN",)


def test_values_in_nested_mappings_and_lists_are_interpolated(tmp_path, monkeypatch):
    monkeypatch.setenv("X_TOKEN", "t")
    connector = load(tmp_path, "auth:\n  tokens: [a, '${X_TOKEN}']\nplain: 3\n")
    assert connector.config == {"auth": {"tokens": ["a", "t"]}, "plain": 3}


def test_an_unset_variable_without_default_names_the_field_and_the_fix(tmp_path):
    with pytest.raises(ConnectorConfigError) as info:
        load(tmp_path, "auth:\n  tokens: [a, '${X_TOKEN}']\n")
    assert info.value.field == "config.auth.tokens[1]"
    assert info.value.problem == "environment variable X_TOKEN is not set and has no default"
    assert info.value.fix == "export X_TOKEN=<value>, or write ${X_TOKEN:-<default>} in the file"


@pytest.mark.parametrize("bad", ["${1ABC}", "${X-TOKEN}", "${}", "${X_TOKEN:default}"])
def test_a_malformed_reference_is_an_error_not_a_literal(tmp_path, bad):
    with pytest.raises(ConnectorConfigError, match="is not a valid variable reference") as info:
        load(tmp_path, f"token: '{bad}'\n")
    assert info.value.field == "config.token"


def test_pip_url_is_interpolated_too(tmp_path, monkeypatch):
    monkeypatch.setenv("X_VERSION", "7.1.1")
    connector = load(tmp_path, "{}\n", extra="pip_url: airbyte-source-x==${X_VERSION}\n")
    assert connector.pip_url == "airbyte-source-x==7.1.1"
    assert connector.env_vars == ("X_VERSION",)
