"""`schema_change:` and `bad_data:` in the connector YAML: the defaults, every allowed value, and
the message (file, field, fix) for each mistake. No services."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pyairbyte.utils.connector_config import ConnectorConfigError, load_connector_file
from pyairbyte.utils.data_policy import (
    ALLOWED,
    BadDataPolicy,
    DataPolicy,
    SchemaChangePolicy,
    parse_data_policy,
)

BASE = """
version: 1
name: source-shop
connector_type: source
pip_url: airbyte-source-shop==1.0.0
config:
  api_key: ${SHOP_API_KEY}
"""
FIELDS = [(block, name) for block, names in ALLOWED.items() for name in names]
POLICY_CLASSES = {"schema_change": SchemaChangePolicy, "bad_data": BadDataPolicy}
YAML_PATH = Path("/connectors/shop.yaml")


@pytest.fixture
def connectors_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTORS_DIR", str(tmp_path))
    monkeypatch.setenv("SHOP_API_KEY", "k-123456")
    return tmp_path


def write(directory, extra: str):
    path = directory / "shop.yaml"
    path.write_text(textwrap.dedent(BASE) + textwrap.dedent(extra))
    return path


def refused(path, field: str) -> str:
    """The message `load_connector_file` refuses `path` with: on `field`, naming the file."""
    with pytest.raises(ConnectorConfigError) as info:
        load_connector_file(path)
    error = info.value
    assert error.path == str(path.resolve())
    assert error.field == field
    assert str(error).startswith(f"{path.resolve()}: field '{field}': ")
    assert error.fix
    return str(error)


def parse_error(data: dict) -> ConnectorConfigError:
    with pytest.raises(ConnectorConfigError) as info:
        parse_data_policy(data, YAML_PATH)
    return info.value


# --- what loads ----------------------------------------------------------------------------------


def test_without_the_blocks_the_defaults_apply(connectors_dir):
    policy = load_connector_file(write(connectors_dir, "")).data_policy
    assert policy == DataPolicy()
    assert policy.schema_change == SchemaChangePolicy("evolve", "evolve", "evolve")
    assert policy.bad_data == BadDataPolicy("dead_letter", "fail", "dead_letter", "fail")


@pytest.mark.parametrize(
    "extra",
    [
        "schema_change:\nbad_data:\n",
        "schema_change: {}\nbad_data: {}\n",
        "bad_data:\n  null_keys:\n",
    ],
)
def test_empty_blocks_and_null_fields_take_the_defaults(connectors_dir, extra):
    assert load_connector_file(write(connectors_dir, extra)).data_policy == DataPolicy()


def test_the_defaults_are_the_first_allowed_values():
    assert parse_data_policy({}, YAML_PATH) == DataPolicy()
    for block, name in FIELDS:
        assert getattr(getattr(DataPolicy(), block), name) == ALLOWED[block][name][0]


@pytest.mark.parametrize(
    ("block", "name", "value"),
    [(block, name, value) for block, name in FIELDS for value in ALLOWED[block][name]],
)
def test_every_allowed_value_loads(connectors_dir, block, name, value):
    path = write(connectors_dir, f"{block}:\n  {name}: {value}\n")
    policy = load_connector_file(path).data_policy
    assert getattr(getattr(policy, block), name) == value
    # The other fields, and the other block, keep their defaults.
    expected = {block: POLICY_CLASSES[block](**{name: value})}
    assert policy == DataPolicy(**expected)


def test_both_blocks_fully_written(connectors_dir):
    extra = """
    schema_change:
      new_columns: discard
      type_changes: freeze
      removed_columns: freeze
    bad_data:
      unparsable_records: fail
      invalid_values: nullify
      null_keys: fail
      count_mismatch: warn
    """
    connector = load_connector_file(write(connectors_dir, extra))
    assert connector.data_policy == DataPolicy(
        schema_change=SchemaChangePolicy("discard", "freeze", "freeze"),
        bad_data=BadDataPolicy("fail", "nullify", "fail", "warn"),
    )
    # The other settings are read as before.
    assert connector.config == {"api_key": "k-123456"}


# --- the messages, exactly -----------------------------------------------------------------------


def test_a_value_not_allowed():
    error = parse_error({"bad_data": {"invalid_values": "drop"}})
    assert str(error) == (
        "/connectors/shop.yaml: field 'bad_data.invalid_values': 'drop' is not one of fail, "
        "nullify. Fix: write one of fail, nullify, in lowercase (fail: fail the sync, naming "
        "stream, key and field; nullify: store NULL (or strip U+0000) and record it in "
        "_airbyte_meta.changes), or leave it out for fail"
    )
    assert (error.path, error.field) == (str(YAML_PATH), "bad_data.invalid_values")


def test_a_value_of_the_other_field_is_not_allowed():
    # discard is a value of new_columns and type_changes, not of removed_columns.
    error = parse_error({"schema_change": {"removed_columns": "discard"}})
    assert str(error) == (
        "/connectors/shop.yaml: field 'schema_change.removed_columns': 'discard' is not one of "
        "evolve, freeze. Fix: write one of evolve, freeze, in lowercase (evolve: keep the "
        "column, NULL from then on; freeze: fail the sync, naming the column), or leave it out "
        "for evolve"
    )


def test_a_value_in_another_case_is_refused_and_the_fix_says_lowercase():
    error = parse_error({"bad_data": {"null_keys": "Fail"}})
    assert error.field == "bad_data.null_keys"
    assert error.problem == "'Fail' is not one of dead_letter, fail (values are case-sensitive)"
    assert error.fix.startswith("write one of dead_letter, fail, in lowercase (dead_letter: ")
    assert error.fix.endswith("or leave it out for dead_letter")


def test_a_boolean_says_how_yaml_read_it():
    error = parse_error({"bad_data": {"count_mismatch": True}})
    assert str(error) == (
        "/connectors/shop.yaml: field 'bad_data.count_mismatch': expected one of fail, warn as "
        "text, got bool True (YAML reads an unquoted yes/no/on/off/true/false as a boolean). "
        "Fix: write one of fail, warn, in lowercase (fail: fail the sync when records sent != "
        "landed + dead-lettered; warn: log the difference and load anyway), or leave it out for "
        "fail"
    )


@pytest.mark.parametrize(
    ("value", "shown"), [(3, "int 3"), (["evolve"], "list ['evolve']"), ({"a": 1}, "dict {'a': 1}")]
)
def test_a_value_that_is_not_text(value, shown):
    error = parse_error({"schema_change": {"new_columns": value}})
    assert error.field == "schema_change.new_columns"
    assert error.problem == f"expected one of evolve, freeze, discard as text, got {shown}"
    assert error.fix.startswith("write one of evolve, freeze, discard, in lowercase (evolve: ")


@pytest.mark.parametrize(("block", "name"), FIELDS)
def test_every_field_explains_each_of_its_values(block, name):
    error = parse_error({block: {name: "nonsense"}})
    assert error.field == f"{block}.{name}"
    choices = ", ".join(ALLOWED[block][name])
    assert error.problem == f"'nonsense' is not one of {choices}"
    assert error.fix.startswith(f"write one of {choices}, in lowercase (")
    for value in ALLOWED[block][name]:
        assert f"{value}: " in error.fix


def test_a_block_that_is_not_a_mapping():
    error = parse_error({"schema_change": "evolve"})
    assert str(error) == (
        "/connectors/shop.yaml: field 'schema_change': expected a mapping, got str. Fix: write "
        "e.g. `schema_change: {new_columns: evolve, type_changes: evolve, removed_columns: "
        "evolve}` (any field may be left out), or leave the block out for these defaults"
    )
    error = parse_error({"bad_data": ["fail"]})
    assert str(error) == (
        "/connectors/shop.yaml: field 'bad_data': expected a mapping, got list. Fix: write e.g. "
        "`bad_data: {unparsable_records: dead_letter, invalid_values: fail, null_keys: "
        "dead_letter, count_mismatch: fail}` (any field may be left out), or leave the block "
        "out for these defaults"
    )


def test_an_unknown_key_names_the_allowed_keys():
    error = parse_error({"schema_change": {"new_column": "evolve"}})
    assert str(error) == (
        "/connectors/shop.yaml: field 'schema_change.new_column': unknown key 'new_column'. "
        "Fix: remove it or use one of: new_columns, type_changes, removed_columns"
    )
    # A field of the other block is unknown in this one.
    error = parse_error({"bad_data": {"new_columns": "evolve"}})
    assert error.field == "bad_data.new_columns"
    assert error.fix == (
        "remove it or use one of: unparsable_records, invalid_values, null_keys, count_mismatch"
    )


# --- the loader refuses a connector YAML with a bad block ----------------------------------------


@pytest.mark.parametrize(
    ("extra", "field", "fix"),
    [
        (
            "bad_data:\n  invalid_values: drop\n",
            "bad_data.invalid_values",
            "Fix: write one of fail, nullify, in lowercase (",
        ),
        (
            "schema_change:\n  new_columns: EVOLVE\n",
            "schema_change.new_columns",
            "Fix: write one of evolve, freeze, discard, in lowercase (",
        ),
        (
            "bad_data:\n  count_mismatch: no\n",
            "bad_data.count_mismatch",
            "Fix: write one of fail, warn, in lowercase (",
        ),
        ("schema_change: evolve\n", "schema_change", "Fix: write e.g. `schema_change: {"),
        ("bad_data: [fail]\n", "bad_data", "Fix: write e.g. `bad_data: {"),
        (
            "bad_data:\n  nul_keys: fail\n",
            "bad_data.nul_keys",
            "Fix: remove it or use one of: unparsable_records, invalid_values, null_keys, "
            "count_mismatch",
        ),
    ],
)
def test_load_connector_file_refuses_a_bad_block(connectors_dir, extra, field, fix):
    message = refused(write(connectors_dir, extra), field)
    assert str((connectors_dir / "shop.yaml").resolve()) in message
    assert f"field '{field}'" in message
    assert fix in message


def test_a_bad_block_is_reported_before_a_missing_variable(connectors_dir, monkeypatch):
    # A structural mistake comes first, as with schedule/freshness/retry.
    monkeypatch.delenv("SHOP_API_KEY")
    refused(write(connectors_dir, "bad_data: {null_keys: drop}\n"), "bad_data.null_keys")


def test_the_blocks_are_allowed_top_level_keys(connectors_dir):
    # A misspelt block name is an unknown top-level key, and the fix lists the two blocks.
    message = refused(write(connectors_dir, "bad_date: {null_keys: fail}\n"), "bad_date")
    assert "schema_change, bad_data" in message
