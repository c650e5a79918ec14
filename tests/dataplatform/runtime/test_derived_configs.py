"""workspace.yaml, compose ports and Dockerfile EXPOSE are generated from code-locations.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from dataplatform.runtime import derived_configs
from dataplatform.runtime.code_locations import load_code_locations, load_document, workspace_config
from dataplatform.runtime.derived_configs import DerivedConfigError, DerivedFiles
from pyairbyte import settings

ROOT = settings.app_root()


def test_committed_files_match_code_locations_json():
    """Fails when someone edits code-locations.json and forgets to regenerate."""
    diffs = derived_configs.drift()
    assert diffs == {}, "\n".join(diffs.values()) + f"\nfix: {derived_configs.REGENERATE}"


@pytest.fixture
def tree(tmp_path):
    """A copy of the derived files plus a code-locations.json to change."""
    (tmp_path / "platform").mkdir()
    for rel in ("platform/workspace.yaml", "docker-compose.yaml", "Dockerfile.data-manager"):
        shutil.copy(ROOT / rel, tmp_path / rel)
    source = tmp_path / "code-locations.json"
    shutil.copy(settings.code_locations_file(), source)
    files = DerivedFiles(
        workspace=tmp_path / "platform" / "workspace.yaml",
        compose=tmp_path / "docker-compose.yaml",
        dockerfile=tmp_path / "Dockerfile.data-manager",
    )
    return source, files


def _add_location(source, name, port, enabled=True):
    doc = json.loads(source.read_text())
    doc["code_locations"].append(
        {"name": name, "enabled": enabled, "module": "dagster_code.dbt_poc", "port": port,
         "host": "data-manager", "description": f"{name} location"}
    )  # fmt: skip
    source.write_text(json.dumps(doc, indent=2))


def test_adding_a_location_drifts_all_three_files_and_write_fixes_them(tree):
    source, files = tree
    _add_location(source, "new_sync", 4280)
    diffs = derived_configs.drift(source, files)
    assert set(diffs) == {files.workspace, files.compose, files.dockerfile}
    assert '+      - "127.0.0.1:4280:4280"  # new_sync gRPC server' in diffs[files.compose]
    assert "+EXPOSE 4266 4267 4268 4280" in diffs[files.dockerfile]

    compose_before = files.compose.read_text()
    assert set(derived_configs.write(source, files)) == set(diffs)
    assert derived_configs.drift(source, files) == {}
    # Only the block between the markers changed; the hand-written rest is byte-identical.
    before = compose_before.splitlines()
    after = files.compose.read_text().splitlines()
    assert [x for x in after if x not in before] == [
        '      - "127.0.0.1:4280:4280"  # new_sync gRPC server'
    ]
    assert [x for x in before if x not in after] == []

    compose = yaml.safe_load(files.compose.read_text())
    assert compose["services"]["data-manager"]["ports"][-1] == "127.0.0.1:4280:4280"
    workspace = yaml.safe_load(files.workspace.read_text())
    assert workspace["load_from"][-1]["grpc_server"] == {
        "host": "data-manager",
        "port": 4280,
        "location_name": "new_sync",
    }


def test_disabled_location_is_left_out_everywhere(tree):
    source, files = tree
    _add_location(source, "paused", 4281, enabled=False)
    assert derived_configs.drift(source, files) == {}


def test_check_command_exits_non_zero_with_a_diff(tree, tmp_path):
    source, files = tree
    _add_location(source, "new_sync", 4280)
    derived_configs.write(source, files)  # our tmp tree is now ahead of the repo's json
    result = subprocess.run(
        [sys.executable, "-m", "dataplatform.cli", "configs", "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "CODE_LOCATIONS_FILE": str(source)},
    )
    # The repo's own files lack new_sync, so a check against the new json reports drift.
    assert result.returncode == 1
    assert "drifted from code-locations.json" in result.stdout
    assert derived_configs.REGENERATE in result.stdout
    assert "+EXPOSE 4266 4267 4268 4280" in result.stdout


def test_missing_markers_is_a_clear_error_and_nothing_is_written(tree):
    source, files = tree
    _add_location(source, "new_sync", 4280)
    text = files.dockerfile.read_text().replace(derived_configs.END, "# (marker removed)")
    files.dockerfile.write_text(text)
    workspace_before = files.workspace.read_text()
    with pytest.raises(DerivedConfigError, match="expected exactly one '# BEGIN GENERATED"):
        derived_configs.write(source, files)
    assert files.workspace.read_text() == workspace_before


def test_local_mode_workspace_uses_loopback():
    locations = load_code_locations(settings.code_locations_file(), check_modules=False)
    ws = workspace_config(load_document(settings.code_locations_file()))
    text = derived_configs.render_workspace(locations, ws, "local", "code-locations.json")
    hosts = {e["grpc_server"]["host"] for e in yaml.safe_load(text)["load_from"]}
    assert hosts == {"127.0.0.1"}
