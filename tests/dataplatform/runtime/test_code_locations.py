"""code-locations.json validation: each bad entry gets one clear error naming entry and field."""

from __future__ import annotations

import json

import pytest

from dataplatform.runtime.code_locations import (
    CodeLocationsError,
    load_code_locations,
    read_code_locations,
    validate,
)
from pyairbyte import settings

ALPHA = "tests.fixture_locations.alpha"
BETA = "tests.fixture_locations.beta"


def write(tmp_path, entries, **extra):
    path = tmp_path / "code-locations.json"
    path.write_text(json.dumps({"code_locations": entries, **extra}))
    return path


def entry(name, port, module=ALPHA, **kw):
    return {"name": name, "enabled": True, "module": module, "port": port, **kw}


def errors(path):
    return [str(f) for f in validate(path) if f.severity == "error"]


def test_repository_file_is_valid_and_enables_the_three_sample_locations():
    locations = [loc for loc in load_code_locations(settings.code_locations_file()) if loc.enabled]
    assert [(loc.name, loc.port, loc.module) for loc in locations] == [
        ("dbt_poc", 4266, "dagster_code.dbt_poc"),
        ("airbyte_sync", 4267, "dagster_code.airbyte_sync"),
        ("sample_product_sync", 4268, "dagster_code.sample_product_sync"),
    ]
    assert all(loc.enabled and loc.host == "data-manager" for loc in locations)


def test_duplicate_port_is_reported_on_the_later_entry(tmp_path):
    path = write(tmp_path, [entry("alpha", 4290), entry("beta", 4290, BETA)])
    assert errors(path) == [
        f"{path}: error: code_locations[1] (\"beta\"), field 'port': 4290 is already used by "
        'code_locations[0] ("alpha"); give each location its own port in 4266-4299'
    ]
    good, _ = read_code_locations(path)
    assert [loc.name for loc in good] == ["alpha"]


def test_port_out_of_range(tmp_path):
    path = write(tmp_path, [entry("alpha", 8080), entry("beta", 4265, BETA)])
    assert errors(path) == [
        f"{path}: error: code_locations[0] (\"alpha\"), field 'port': 8080 is outside the "
        "code-location range 4266-4299; use the next free port in that range",
        f"{path}: error: code_locations[1] (\"beta\"), field 'port': 4265 is outside the "
        "code-location range 4266-4299; use the next free port in that range",
    ]


def test_unknown_module_is_found_without_importing_anything(tmp_path):
    path = write(
        tmp_path,
        [
            entry("alpha", 4290),
            entry("ghost", 4291, "dagster_code.no_such_location"),
            entry("elsewhere", 4292, "no_such_package.defs"),
        ],
    )
    assert errors(path) == [
        f"{path}: error: code_locations[1] (\"ghost\"), field 'module': "
        "'dagster_code.no_such_location' is not importable (no module named "
        "'dagster_code.no_such_location'); check the module path, or set \"enabled\": false",
        f"{path}: error: code_locations[2] (\"elsewhere\"), field 'module': "
        "'no_such_package.defs' is not importable (ModuleNotFoundError: No module named "
        "'no_such_package'); check the module path, or set \"enabled\": false",
    ]


def test_disabled_entry_is_not_module_checked_but_keeps_its_port(tmp_path):
    path = write(
        tmp_path,
        [
            entry("retired", 4290, "dagster_code.removed_long_ago", enabled=False),
            entry("alpha", 4290),
        ],
    )
    assert errors(path) == [
        f"{path}: error: code_locations[1] (\"alpha\"), field 'port': 4290 is already used by "
        'code_locations[0] ("retired"); give each location its own port in 4266-4299'
    ]


def test_duplicate_name_missing_fields_and_wrong_types(tmp_path):
    path = write(
        tmp_path,
        [
            entry("alpha", 4290),
            entry("alpha", 4291, BETA),
            {"name": "no-port-here", "module": ALPHA},
            {"name": "beta", "module": BETA, "port": "4293", "enabled": "yes"},
        ],
    )
    assert errors(path) == [
        f"{path}: error: code_locations[1] (\"alpha\"), field 'name': 'alpha' is already used "
        'by code_locations[0] ("alpha"); names must be unique',
        f"{path}: error: code_locations[2] (\"no-port-here\"), field 'name': 'no-port-here' is "
        "not a valid name; use letters, digits and underscores",
        f"{path}: error: code_locations[2] (\"no-port-here\"), field 'port': None is not an "
        "integer port number",
        f"{path}: error: code_locations[3] (\"beta\"), field 'port': '4293' is not an integer "
        "port number",
        f"{path}: error: code_locations[3] (\"beta\"), field 'enabled': 'yes' must be true or "
        "false",
    ]


def test_unknown_field_is_a_warning_not_an_error(tmp_path):
    path = write(tmp_path, [entry("alpha", 4290, enable=False)])
    findings = validate(path)
    assert [f.severity for f in findings] == ["warning"]
    assert "field 'enable': unknown field" in str(findings[0])
    assert [loc.name for loc in load_code_locations(path)] == ["alpha"]


def test_broken_json_names_line_and_column(tmp_path):
    path = tmp_path / "code-locations.json"
    path.write_text('{"code_locations": [\n  {"name": "alpha",}\n]}')
    with pytest.raises(CodeLocationsError) as err:
        load_code_locations(path)
    assert str(err.value) == (
        f"{path}: error: file: invalid JSON at line 2, column 20: Expecting property name "
        "enclosed in double quotes"
    )


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(CodeLocationsError, match="not found; create it or point CODE_LOCATIONS"):
        load_code_locations(tmp_path / "nope.json")


def test_env_override_is_honoured(tmp_path, monkeypatch):
    path = write(tmp_path, [entry("alpha", 4290)])
    monkeypatch.setenv("CODE_LOCATIONS_FILE", str(path))
    assert [loc.name for loc in load_code_locations()] == ["alpha"]
