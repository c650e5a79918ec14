"""Hostile or broken connector YAMLs: each is refused with ConnectorConfigError naming the file,
fast, without echoing a secret; and one broken file never stops another connector from loading.
No services."""

from __future__ import annotations

import time

import pytest

from pyairbyte.errors import YamlFileError
from pyairbyte.utils import safe_yaml
from pyairbyte.utils.connector_config import (
    MASK,
    ConnectorConfigError,
    get_connector_by_name,
    is_secret_key,
    load_connector_file,
)
from pyairbyte.utils.connector_files import find_connector_file

GOOD = """\
version: 1
name: source-good
connector_type: source
source_manifest: manifests/items.yaml
config:
  base_url: http://127.0.0.1:9
"""
MANIFEST = """\
version: 6.0.0
type: DeclarativeSource
check: {type: CheckStream, stream_names: [items]}
spec:
  type: Spec
  connection_specification:
    type: object
    properties:
      base_url: {type: string}
      shop_login: {type: string, airbyte_secret: true}
streams: []
"""


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """A connector YAML whose config is "billion laughs": each anchor a list of `width` aliases
    of the one before, 10^9 leaves once expanded, in under 600 bytes."""
    lines = ["version: 1", "name: source-bomb", "connector_type: source", "config:"]
    lines.append(f"  a0: &a0 [{','.join(['lol'] * width)}]")
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [{','.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def connectors_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTORS_DIR", str(tmp_path))
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "items.yaml").write_text(MANIFEST)
    (tmp_path / "good.yaml").write_text(GOOD)
    return tmp_path


def refused(path) -> ConnectorConfigError:
    with pytest.raises(ConnectorConfigError) as info:
        load_connector_file(path)
    assert info.value.path == str(path.resolve())
    assert str(info.value).startswith(f"{path.resolve()}: field '{info.value.field}'")
    assert info.value.fix
    return info.value


# --- encoding ----------------------------------------------------------------------------------


def test_a_non_utf8_file_is_named_with_the_byte_offset_and_a_fix(connectors_dir):
    bad = connectors_dir / "latin1.yaml"
    bad.write_bytes(b"version: 1\nname: caf\xe9\n")
    error = refused(bad)
    assert error.field == "(file)"
    assert "not UTF-8" in error.problem and "0xe9 at offset 20 (line 2)" in error.problem
    assert "UTF-8" in error.fix


def test_a_non_utf8_file_does_not_stop_another_connector_from_loading(connectors_dir):
    (connectors_dir / "aaa-latin1.yaml").write_bytes(b"name: caf\xe9\n")
    (connectors_dir / "bomb.yaml").write_text(alias_bomb())
    (connectors_dir / "broken.yaml").write_text("version: [\n")
    assert get_connector_by_name("source-good").name == "source-good"


def test_a_bad_file_found_by_its_stem_is_reported_not_skipped(connectors_dir):
    (connectors_dir / "source-latin1.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConnectorConfigError, match="not UTF-8"):
        get_connector_by_name("source-latin1")


def test_a_utf8_byte_order_mark_is_accepted(connectors_dir):
    path = connectors_dir / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("source-good", "source-bom").encode())
    assert load_connector_file(path).name == "source-bom"


# --- size and alias limits ---------------------------------------------------------------------


def test_an_alias_bomb_is_refused_at_once(connectors_dir):
    path = connectors_dir / "bomb.yaml"
    path.write_text(alias_bomb())
    assert len(path.read_bytes()) < 600  # the 577-byte class of file from the issue
    started = time.monotonic()
    error = refused(path)
    assert time.monotonic() - started < 2
    assert f"more than {safe_yaml.MAX_YAML_NODES} YAML nodes" in error.problem


def test_an_alias_bomb_in_the_manifest_is_refused_on_source_manifest(connectors_dir):
    (connectors_dir / "manifests" / "items.yaml").write_text(alias_bomb())
    error = refused(connectors_dir / "good.yaml")
    assert error.field == "source_manifest"
    assert "items.yaml expands to more than" in error.problem


def test_a_recursive_anchor_is_refused(connectors_dir):
    path = connectors_dir / "loop.yaml"
    path.write_text(GOOD + "  loop: &loop [*loop]\n")
    assert "recursive anchor" in refused(path).problem


def test_plain_aliases_under_the_limit_still_load(connectors_dir):
    path = connectors_dir / "aliases.yaml"
    path.write_text(GOOD + "  headers: &h {accept: json}\n  more_headers: *h\n")
    assert load_connector_file(path).config["more_headers"] == {"accept": "json"}


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(connectors_dir):
    path = connectors_dir / "huge.yaml"
    path.write_text(GOOD + "# " + "x" * safe_yaml.MAX_YAML_BYTES + "\n")
    error = refused(path)
    assert f"larger than the limit of {safe_yaml.MAX_YAML_BYTES} bytes" in error.problem


def test_nesting_deeper_than_the_limit_is_refused(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 150 + "]" * 150)
    with pytest.raises(YamlFileError, match="deeper than the limit of 100 levels"):
        safe_yaml.load_yaml_file(path)


@pytest.mark.parametrize(
    "text",
    ["a: 2024-02-30\n", "a: !!int nope\n", "a: " + "9" * 5000 + "\n", "[" * 5000 + "\n"],
    ids=["bad-date", "bad-int-tag", "huge-int", "deep-flow"],
)
def test_values_pyyaml_cannot_build_are_yaml_file_errors(tmp_path, text):
    path = tmp_path / "values.yaml"
    path.write_text(text)
    with pytest.raises(YamlFileError) as info:
        safe_yaml.load_yaml_file(path)
    assert info.value.path == str(path) and info.value.fix


# --- a manifest in the wrong place, a manifest path outside --------------------------------------


def test_a_manifest_beside_the_connector_yamls_is_named_as_a_manifest(connectors_dir):
    stray = connectors_dir / "items-manifest.yaml"
    stray.write_text(MANIFEST)
    error = refused(stray)
    assert "declarative (low-code) manifest, not a connector YAML" in error.problem
    assert "unknown key" not in str(error)
    assert "manifests/items-manifest.yaml" in error.fix and "source_manifest:" in error.fix


@pytest.mark.parametrize(
    "where", ["../outside.yaml", "manifests/../../outside.yaml", "ABSOLUTE"], ids=str
)
def test_a_manifest_path_outside_the_connector_directory_is_refused(connectors_dir, where):
    outside = connectors_dir.parent / "outside.yaml"
    outside.write_text(MANIFEST)
    raw = str(outside) if where == "ABSOLUTE" else where
    path = connectors_dir / "escape.yaml"
    path.write_text(GOOD.replace("manifests/items.yaml", raw).replace("source-good", "source-esc"))
    error = refused(path)
    assert error.field == "source_manifest"
    assert "outside the connector YAML's directory" in error.problem
    assert "manifests/" in error.fix


def test_a_manifest_symlinked_from_outside_is_refused(connectors_dir):
    outside = connectors_dir.parent / "outside.yaml"
    outside.write_text(MANIFEST)
    (connectors_dir / "manifests" / "link.yaml").symlink_to(outside)
    path = connectors_dir / "link.yaml"
    path.write_text(GOOD.replace("items.yaml", "link.yaml").replace("source-good", "source-link"))
    assert "outside the connector YAML's directory" in refused(path).problem


# --- secrets -----------------------------------------------------------------------------------

SECRET = "sk-live-5f0c2e9a"


@pytest.mark.parametrize(
    "key", ["api_key", "password", "token", "secret", "client_secret", "access_token", "apiKey"]
)
def test_known_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["base_url", "page_size", "start_date", "primary_key"])
def test_ordinary_keys_are_not_secrets(key):
    assert not is_secret_key(key)


def test_secrets_are_masked_in_repr_and_masked_config(connectors_dir, monkeypatch):
    monkeypatch.setenv("GOOD_API_KEY", SECRET)
    path = connectors_dir / "good.yaml"
    path.write_text(
        GOOD
        + "  api_key: ${GOOD_API_KEY}\n"
        + "  shop_login: plain-login-in-spec\n"
        + "  auth: {client_secret: nested-secret-1, client_id: visible-id}\n"
    )
    connector = load_connector_file(path)
    assert connector.config["api_key"] == SECRET  # the source still gets the value
    masked = connector.masked_config()
    assert masked["api_key"] == MASK
    assert masked["shop_login"] == MASK  # airbyte_secret in the manifest's spec
    assert masked["auth"] == {"client_secret": MASK, "client_id": "visible-id"}
    assert masked["base_url"] == "http://127.0.0.1:9"
    for text in (repr(connector), str(connector)):
        assert SECRET not in text and "plain-login-in-spec" not in text
        assert "nested-secret-1" not in text
    said = connector.redact(f"GET /items?key={SECRET} as plain-login-in-spec failed")
    assert said == f"GET /items?key={MASK} as {MASK} failed"


def test_a_secret_named_variable_is_redacted_wherever_it_is_used(connectors_dir, monkeypatch):
    monkeypatch.setenv("SHOP_TOKEN", SECRET)
    path = connectors_dir / "good.yaml"
    path.write_text(GOOD.replace("http://127.0.0.1:9", "http://127.0.0.1:9/?t=${SHOP_TOKEN}"))
    connector = load_connector_file(path)
    assert SECRET in connector.config["base_url"]
    assert SECRET not in connector.redact(str(connector.config))


def test_a_yaml_syntax_error_does_not_echo_the_line(connectors_dir):
    path = connectors_dir / "good.yaml"
    path.write_text(GOOD + f"  password: {SECRET}\n   bad: [\n")
    error = refused(path)
    assert "not valid YAML" in error.problem and "line" in error.problem
    assert SECRET not in str(error)


def test_a_bad_reference_in_a_secret_field_is_not_echoed(connectors_dir):
    path = connectors_dir / "good.yaml"
    path.write_text(GOOD + "  api_key: ${" + SECRET + "}\n")
    error = refused(path)
    assert error.field == "config.api_key"
    assert "is not a valid variable reference" in error.problem
    assert SECRET not in str(error)


def test_a_bad_tagged_value_is_not_echoed(connectors_dir):
    path = connectors_dir / "good.yaml"
    path.write_text(GOOD + f"  api_key: !!int {SECRET}\n")
    assert SECRET not in str(refused(path))


def test_find_connector_file_skips_unreadable_files_when_matching_names(connectors_dir):
    (connectors_dir / "a-bad.yaml").write_bytes(b"\xff\xfe\x00junk")
    assert find_connector_file("source-good").name == "good.yaml"
