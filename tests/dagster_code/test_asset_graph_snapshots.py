"""Every code location's asset graph matches its committed snapshot in snapshots/<name>.json.

A change to assets, checks, lineage, groups, kinds, jobs or schedules shows up as a diff of those
files. After an intended change, rewrite them and review the diff:

    UPDATE_SNAPSHOTS=1 pytest tests/dagster_code/test_asset_graph_snapshots.py
    (or: make update-snapshots)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyairbyte import settings

SNAPSHOTS = Path(__file__).with_name("snapshots")
REPO_ROOT = Path(__file__).resolve().parents[2]
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"
# Settings the locations read when they run. None may be needed to load one: a code server must
# start, and show its assets, before anyone has configured the source.
RUN_TIME_SETTINGS = (
    "POSTGRES_",
    "SWEDEN_",
    "MYSQL_",
    "HASURA_",
    "NRC_",
    "EVENT_STORE_",
    "SAMPLE_API_",
    "FAKER_",
    "ORDERS_API_",
)


def _locations() -> list[str]:
    doc = json.loads(settings.code_locations_file().read_text())
    return sorted(entry["name"] for entry in doc["code_locations"])


LOCATIONS = _locations()


@pytest.fixture(scope="module")
def graphs() -> dict:
    """All locations loaded in one fresh interpreter, without their run-time settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(RUN_TIME_SETTINGS)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.dagster_code.asset_graph", *LOCATIONS],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_location_has_a_snapshot():
    expected = {f"{name}.json" for name in LOCATIONS}
    present = {p.name for p in SNAPSHOTS.glob("*.json")}
    if UPDATE:
        for stale in present - expected:
            (SNAPSHOTS / stale).unlink()
        return
    assert present == expected, "run: UPDATE_SNAPSHOTS=1 pytest " + __file__


@pytest.mark.parametrize("location", LOCATIONS)
def test_asset_graph_matches_snapshot(graphs, location):
    path = SNAPSHOTS / f"{location}.json"
    actual = graphs[location]
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
        return
    assert path.exists(), f"no snapshot for {location}: run UPDATE_SNAPSHOTS=1 pytest {__file__}"
    expected = json.loads(path.read_text())
    assert actual == expected, (
        f"the asset graph of {location} changed; if that is intended, run "
        f"UPDATE_SNAPSHOTS=1 pytest {Path(__file__).relative_to(REPO_ROOT)} and review the diff"
    )
