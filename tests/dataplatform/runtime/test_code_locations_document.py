"""code-locations.json validation on in-memory documents, and the one Finding type that the
validator and the doctor share. No files besides tmp ones, no imports of location code."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataplatform.runtime.code_locations import (
    CodeLocationsError,
    Finding,
    load_document,
    validate_document,
    workspace_config,
)

PATH = Path("/repo/code-locations.json")


def entry(name: str, port: int, **extra) -> dict:
    return {"name": name, "module": f"dagster_code.{name}", "port": port, **extra}


def check(*entries) -> tuple[list, list[str]]:
    locations, findings = validate_document(
        {"code_locations": list(entries)}, PATH, check_modules=False
    )
    return [loc.name for loc in locations], [str(f) for f in findings]


def test_valid_entries_become_locations_with_defaults():
    (loc,), findings = validate_document(
        {"code_locations": [entry("shop", 4270, metadata={"connector": "source-shop"})]},
        PATH,
        check_modules=False,
    )
    assert findings == []
    assert (loc.name, loc.module, loc.port, loc.host, loc.enabled) == (
        "shop",
        "dagster_code.shop",
        4270,
        "data-manager",
        True,
    )
    assert loc.metadata == {"connector": "source-shop"}


def test_the_later_duplicate_is_reported_and_the_first_is_kept():
    names, findings = check(entry("a", 4270), entry("b", 4270), entry("a", 4271))
    assert names == ["a"]
    assert findings == [
        f"{PATH}: error: code_locations[1] (\"b\"), field 'port': 4270 is already used by "
        f'code_locations[0] ("a"); give each location its own port in 4266-4299',
        f"{PATH}: error: code_locations[2] (\"a\"), field 'name': 'a' is already used by "
        f'code_locations[0] ("a"); names must be unique',
    ]


def test_a_disabled_entry_keeps_its_port_reserved():
    names, findings = check(entry("off", 4270, enabled=False), entry("on", 4270))
    assert names == ["off"]
    assert "4270 is already used by code_locations[0]" in findings[0]


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        (entry("x", 4270, host=""), "host", "must be a host name"),
        (entry("x", 4270, metadata=[]), "metadata", "must be a JSON object"),
        (entry("x", 4270, enabled="no"), "enabled", "must be true or false"),
        (entry("x", True), "port", "is not an integer port number"),
        (entry("x", 4300), "port", "outside the code-location range 4266-4299"),
        ({**entry("x", 4270), "module": "dagster_code..x"}, "module", "not a dotted module path"),
        ({**entry("x", 4270), "name": "my-loc"}, "name", "is not a valid name"),
    ],
)
def test_each_bad_field_is_named(raw, field, says):
    names, findings = check(raw)
    assert names == []
    assert len(findings) == 1
    assert f"field '{field}': " in findings[0] and says in findings[0]


def test_an_entry_that_is_not_an_object_is_reported_by_index():
    assert check("shop") == (
        [],
        [f"{PATH}: error: code_locations[0]: each entry must be a JSON object"],
    )


def test_an_unknown_field_is_only_a_warning():
    names, findings = check(entry("shop", 4270, enable=False))
    assert names == ["shop"]
    assert findings[0].startswith(f"{PATH}: warning: code_locations[0] (\"shop\"), field 'enable'")


def test_workspace_config_has_defaults():
    assert workspace_config({}).workspace_name == "dagster-workspace"
    assert workspace_config({"config": {"workspace_name": "w", "version": 2}}).version == "2"


def test_a_document_without_a_list_is_rejected_as_a_whole(tmp_path):
    path = tmp_path / "code-locations.json"
    path.write_text('{"code_locations": {}}')
    with pytest.raises(CodeLocationsError) as info:
        load_document(path)
    (finding,) = info.value.findings
    assert (finding.entry, finding.field) == ("file", "code_locations")
    assert str(info.value) == str(finding)


def test_a_finding_reads_as_one_line_and_renders_with_its_fix_for_the_doctor():
    finding = Finding(
        "error",
        "code-locations",
        "4290 is already used",
        entry='code_locations[1] ("b")',
        field="port",
        fix="use the next free port",
    )
    assert finding.place == "code_locations[1] (\"b\"), field 'port'"
    assert str(finding) == (
        "code-locations: error: code_locations[1] (\"b\"), field 'port': 4290 is already used"
    )
    assert finding.render() == (
        "ERROR   [code-locations] code_locations[1] (\"b\"), field 'port': 4290 is already used"
        "\n        fix: use the next free port"
    )
    plain = Finding("note", "database", "not reachable")
    assert plain.place == "" and plain.render() == "NOTE    [database] not reachable"
