"""Bad and hostile input: every one gets the project's own error, names the file, writes nothing
and echoes no secret. No services: this file is in the fast tier.

- properties (hypothesis) of the connector YAML loader and the code-locations.json validator:
  any bytes, any YAML/JSON tree, any value in any field either loads or raises the project's
  error naming the file and the field; nothing else is raised and no file is written;
- `connector add` refusals (names, an unreadable or explosive YAML) through the real CLI on a
  copy of the repository, whose tree stays byte-identical;
- relation names over PostgreSQL's 63 characters, a full port range, and secrets in what `add`
  and `check` print, through the same functions the CLI calls.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataplatform.lifecycle.add import plan_add
from dataplatform.lifecycle.discovery import DiscoveredStream, check_and_discover
from dataplatform.lifecycle.doctor.connectors import check_connectors
from dataplatform.lifecycle.doctor.report import Report
from dataplatform.lifecycle.errors import LifecycleError
from dataplatform.lifecycle.names import MAX_LOCATION_NAME
from dataplatform.lifecycle.project import Project, choose_port
from dataplatform.runtime.code_locations import (
    PORT_MAX,
    PORT_MIN,
    CodeLocationsError,
    load_document,
    validate_document,
)
from pyairbyte.utils.connector_config import ConnectorConfigError, load_connector_file
from tests.dataplatform.lifecycle.conftest import RepoCopy, make_copy

# No example database: the suite writes nothing into the repository (.hypothesis/).
PROPERTY = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SECRET = "sk-live-badinput-93b1"


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """A connector YAML whose config is "billion laughs": each anchor a list of `width` aliases
    of the one before, 10^9 leaves once expanded, in under 600 bytes."""
    lines = ["version: 1", "name: source-bomb", "connector_type: source", "config:"]
    lines.append(f"  a0: &a0 [{','.join(['lol'] * width)}]")
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [{','.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


# --- properties: the connector YAML loader ---------------------------------------------------

VALID_CONNECTOR = {
    "version": 1,
    "name": "source-prop",
    "connector_type": "source",
    "source_manifest": "manifests/m.yaml",
    "streams": ["items"],
    "config": {"base_url": "http://127.0.0.1:9", "api_key": "${PROP_API_KEY:-k}"},
}
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.sampled_from(["${", "${X", "${1}", "${PROP_UNSET}", "$${A}", "../x", "/etc/passwd", ""])
)
trees = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.integers(), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def loader_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("loader")
    (directory / "manifests").mkdir()
    (directory / "manifests" / "m.yaml").write_text("version: 6.0.0\nstreams: []\ncheck: {}\n")
    return directory


def assert_loads_or_names_the_file(directory: Path, content: bytes) -> None:
    path = directory / "c.yaml"
    path.write_bytes(content)
    before = snapshot(directory)
    try:
        load_connector_file(path)
    except ConnectorConfigError as exc:
        assert exc.path == str(path.resolve())
        assert exc.field and exc.problem and exc.fix
        assert str(exc).startswith(f"{path.resolve()}: field '{exc.field}': ")
    # Any other exception fails the property.
    assert snapshot(directory) == before


@PROPERTY
@given(content=st.binary(max_size=300))
def test_any_bytes_load_or_raise_connector_config_error(loader_dir, content):
    assert_loads_or_names_the_file(loader_dir, content)


@PROPERTY
@given(tree=trees)
def test_any_yaml_tree_loads_or_raises_connector_config_error(loader_dir, tree):
    assert_loads_or_names_the_file(loader_dir, yaml.safe_dump(tree).encode())


@PROPERTY
@given(
    key=st.sampled_from([*VALID_CONNECTOR, "pip_url", "connector_version", "image", "other"]),
    value=trees,
    config_value=trees,
)
def test_any_value_in_any_field_loads_or_names_the_field(loader_dir, key, value, config_value):
    data = json.loads(json.dumps(VALID_CONNECTOR))
    data[key] = value
    if isinstance(data.get("config"), dict):
        data["config"]["extra"] = config_value
    assert_loads_or_names_the_file(loader_dir, yaml.safe_dump(data).encode())


@PROPERTY
@given(text=st.text(alphabet="&*ab[]{}:,- \n!|>'\"#%@`", max_size=200))
def test_yaml_punctuation_soup_loads_or_raises_connector_config_error(loader_dir, text):
    assert_loads_or_names_the_file(loader_dir, text.encode())


# --- properties: the code-locations.json validator --------------------------------------------

json_trees = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
VALID_ENTRY = {"name": "alpha", "module": "nowhere_pkg.alpha", "port": 4266, "enabled": True}


def assert_validates_or_names_the_file(directory: Path, content: bytes) -> None:
    path = directory / "code-locations.json"
    path.write_bytes(content)
    before = snapshot(directory)
    try:
        doc = load_document(path)
    except CodeLocationsError as exc:
        assert exc.findings and all(f.where == str(path) and f.entry for f in exc.findings)
    else:
        _, findings = validate_document(doc, path, check_modules=False)
        for finding in findings:
            assert finding.where == str(path)
            assert finding.entry.startswith("code_locations[")
            assert finding.field or "entry must be a JSON object" in finding.message
    assert snapshot(directory) == before


@PROPERTY
@given(content=st.binary(max_size=300))
def test_any_bytes_as_code_locations_json(tmp_path, content):
    assert_validates_or_names_the_file(tmp_path, content)


@PROPERTY
@given(tree=json_trees)
def test_any_json_tree_as_code_locations_json(tmp_path, tree):
    assert_validates_or_names_the_file(tmp_path, json.dumps(tree).encode())


@PROPERTY
@given(
    entries=st.lists(
        st.builds(
            lambda key, value: {**VALID_ENTRY, key: value},
            st.sampled_from([*VALID_ENTRY, "host", "metadata", "description", "surprise"]),
            json_trees,
        )
        | json_trees,
        max_size=4,
    )
)
def test_any_entry_values_in_code_locations_json(tmp_path, entries):
    assert_validates_or_names_the_file(tmp_path, json.dumps({"code_locations": entries}).encode())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"code_locations": [{"name": "caf\xe9"}]}', "not UTF-8: byte 0xe9 at offset 33"),
        (b'{"code_locations": [' + b"1" * 5000 + b"]}", "cannot read (ValueError)"),
        (b"[" * 100_000 + b"]" * 100_000, "cannot read (RecursionError)"),
    ],
    ids=["latin1", "huge-int", "deep"],
)
def test_unreadable_code_locations_json_is_one_finding(tmp_path, content, message):
    path = tmp_path / "code-locations.json"
    path.write_bytes(content)
    with pytest.raises(CodeLocationsError) as info:
        load_document(path)
    assert message in str(info.value) and str(path) in str(info.value)


# --- `connector add` through the CLI on a copy of the repository -----------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> RepoCopy:
    return make_copy(tmp_path_factory.mktemp("bad-input") / "repo")


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """Connector YAMLs outside the copy, for --connector-yaml."""
    directory = tmp_path_factory.mktemp("outside")
    (directory / "latin1.yaml").write_bytes(
        b"version: 1\nname: source-latin1\nconnector_type: source\nconfig: {city: M\xfcnchen}\n"
    )
    (directory / "bomb.yaml").write_text(alias_bomb())
    return directory


def refuse(repo: RepoCopy, *args: str, timeout: float = 60) -> str:
    before = repo.tree_hash()
    out = repo.cli("connector", "add", *args, timeout=timeout)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and out.stderr.startswith("error: ")
    assert repo.tree_hash() == before
    assert repo.git_status() == ""
    return out.stderr


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("../x", "must be lowercase letters, digits and '_'"),
        ("a;drop", "must be lowercase letters, digits and '_'"),
        ("class", "it is a Python keyword"),
        ("lib", "'lib' is reserved"),
        ("ShopOrders", "must be lowercase letters, digits and '_'"),
        ("x" * 200, "is 200 characters"),
    ],
    ids=["traversal", "sql", "keyword", "package", "upper-case", "200-chars"],
)
def test_add_refuses_bad_names_and_changes_nothing(repo, name, says):
    err = refuse(repo, name, "--dry-run")
    assert says in err
    if name == "class":
        assert "`class_`" in err and "use e.g. `class`" not in err
    if len(name) == 200:
        assert "63-character limit" in err and f"at most {MAX_LOCATION_NAME}" in err


def test_add_with_a_non_utf8_yaml_names_the_file_and_offset(repo, outside):
    err = refuse(repo, "latin1", "--connector-yaml", str(outside / "latin1.yaml"))
    assert f"{outside / 'latin1.yaml'}: field '(file)': the file is not UTF-8" in err
    assert "0xfc at offset" in err


def test_add_dry_run_with_an_alias_bomb_is_refused_at_once(repo, outside):
    err = refuse(repo, "bomb", "--connector-yaml", str(outside / "bomb.yaml"), "--dry-run")
    assert "an alias bomb" in err and str(outside / "bomb.yaml") in err


# --- in-process: plan_add over the copy with a stand-in discover ---------------------------------


def project_of(repo: RepoCopy) -> Project:
    return Project(
        root=repo.root,
        dagster_code=repo.root / "dagster_code",
        connectors_dir=repo.root / "data-manager" / "external-connectors",
        dbt_dir=repo.root / "dbt_models",
        code_locations=repo.root / "data-manager/resources/dagster/code-locations.json",
    )


def discovers(*stream_names: str):
    def discover(connector, requested):
        return [
            DiscoveredStream(name, {"properties": {"id": {"type": "integer"}}}, [["id"]])
            for name in stream_names
        ]

    return discover


@pytest.fixture
def shop_yaml(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("CACHE_SCHEMA", raising=False)
    monkeypatch.setenv("BADINPUT_API_KEY", SECRET)
    path = tmp_path / "shop.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            name: source-badinput-shop
            connector_type: source
            source_manifest: {version: 6.0.0, streams: [], check: {}, spec: {}}
            config:
              base_url: http://127.0.0.1:9/?key=${BADINPUT_API_KEY}
              api_key: ${BADINPUT_API_KEY}
            """
        )
    )
    return path


def test_a_prefixed_model_over_63_characters_is_refused_naming_it(repo, shop_yaml):
    """`faker_users` is taken by the faker location's models, so the new models get the location
    as prefix: staging_<45 characters>_faker_users is 65 characters."""
    location = "s" * 45
    before = repo.tree_hash()
    with pytest.raises(LifecycleError) as info:
        plan_add(project_of(repo), location, shop_yaml, discover=discovers("faker_users"))
    assert f"dbt staging model 'staging_{location}_faker_users' would be 65 characters" in str(
        info.value
    )
    assert "63-character limit" in info.value.problem
    assert "shorter location name" in info.value.fix
    assert repo.tree_hash() == before


def test_a_long_stream_name_over_63_characters_is_refused_naming_the_relation(repo, shop_yaml):
    stream = "a_very_long_stream_name_that_the_source_offers_" + "x" * 12  # 59 characters
    with pytest.raises(LifecycleError) as info:
        plan_add(project_of(repo), "shop", shop_yaml, discover=discovers(stream))
    assert f"'staging_{stream}' would be 67 characters" in info.value.problem
    assert f"leave stream {stream!r} out" in info.value.fix


def test_the_add_plan_never_prints_a_secret(repo, shop_yaml):
    plan = plan_add(project_of(repo), "shop", shop_yaml, discover=discovers("orders"))
    text = plan.describe()
    assert "BADINPUT_API_KEY" in text  # the note names the variable...
    assert SECRET not in text  # ...never its value
    assert SECRET in str(plan.connector.config)  # the connector itself has it


def test_a_failed_source_check_is_reported_without_the_secret(shop_yaml, monkeypatch):
    import pyairbyte.utils.pyairbyte_sync as pyairbyte_sync

    class FailingSource:
        def check(self):
            raise RuntimeError(f"401 from http://127.0.0.1:9/?key={SECRET}")

    monkeypatch.setattr(pyairbyte_sync, "build_source", lambda connector: FailingSource())
    with pytest.raises(LifecycleError) as info:
        check_and_discover(load_connector_file(shop_yaml), None)
    assert "401 from http://127.0.0.1:9/?key=********" in str(info.value)
    assert SECRET not in str(info.value)


# --- ports -------------------------------------------------------------------------------------


def full_document(disabled: tuple[str, ...] = ()) -> dict:
    return {
        "code_locations": [
            {"name": f"loc{p}", "port": p, "enabled": f"loc{p}" not in disabled}
            for p in range(PORT_MIN, PORT_MAX + 1)
        ]
    }


@pytest.mark.parametrize("requested", [None, 4270, 5000], ids=["next-free", "taken", "outside"])
def test_a_full_port_range_names_the_range_and_how_to_free_a_port(requested):
    with pytest.raises(LifecycleError) as info:
        choose_port(full_document(disabled=("loc4280",)), requested, Path("code-locations.json"))
    text = str(info.value)
    assert "None" not in text
    assert f"all 34 ports in {PORT_MIN}-{PORT_MAX}" in info.value.problem
    assert "dataplatform connector remove NAME" in info.value.fix
    assert "disabled locations still hold their ports (loc4280)" in info.value.fix


def test_with_free_ports_left_the_next_one_is_named():
    doc = full_document()
    doc["code_locations"].pop(3)  # 4269
    assert choose_port(doc, None, Path("x")) == 4269
    with pytest.raises(LifecycleError, match=r"take the next free one \(4269\)"):
        choose_port(doc, 4266, Path("x"))


# --- `dataplatform check` on a broken connector directory ---------------------------------------


def connectors_project(tmp_path: Path) -> Project:
    connectors = tmp_path / "external-connectors"
    (connectors / "manifests").mkdir(parents=True)
    return Project(tmp_path, tmp_path / "dagster_code", connectors, tmp_path / "dbt", tmp_path)


def rendered(report: Report) -> str:
    return "\n".join(f.render() for f in report.findings)


def test_check_reports_bad_files_as_findings_and_still_checks_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("BADINPUT_API_KEY", SECRET)
    project = connectors_project(tmp_path)
    directory = project.connectors_dir
    (directory / "good.yaml").write_text(
        "version: 1\nname: source-ok\nconnector_type: source\n"
        "config: {api_key: '${BADINPUT_API_KEY}'}\n"
    )
    (directory / "latin1.yaml").write_bytes(b"version: 1\nname: caf\xe9\n")
    (directory / "bomb.yaml").write_text(alias_bomb())
    (directory / "stray-manifest.yaml").write_text(
        "version: 6.0.0\ntype: DeclarativeSource\ncheck: {}\nstreams: [{name: items}]\n"
    )
    (directory / "typo.yaml").write_text(
        f"version: 1\nname: source-typo\nconnector_type: source\nconfig:\n"
        f"  password: {SECRET}\n   oops: [\n"
    )
    doc = {"code_locations": [{"name": "ok", "metadata": {"connector": "source-ok"}}]}
    report = Report()
    check_connectors(project, doc, report)
    text = rendered(report)
    by_file = {Path(f.message.split(":")[0]).name: f for f in report.errors}
    assert set(by_file) == {"bomb.yaml", "latin1.yaml", "stray-manifest.yaml", "typo.yaml"}
    assert "not UTF-8 text: byte 0xe9 at offset 20" in by_file["latin1.yaml"].message
    assert "alias bomb" in by_file["bomb.yaml"].message
    assert "not valid YAML" in by_file["typo.yaml"].message
    stray = by_file["stray-manifest.yaml"]
    assert "declarative (low-code) manifest" in stray.message and "manifests/" in stray.fix
    assert "unknown key 'check'" not in text
    assert "no YAML" not in text  # source-ok is still found, past the broken files
    assert SECRET not in text
