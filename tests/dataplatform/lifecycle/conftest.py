"""Fixtures for the lifecycle tests: a throw-away copy of the repository, the shop API.

Commands that change files run against a copy (the tracked files of the working tree, committed
into a fresh git repository so `git status` can be asserted), never the real tree. The copy's
environment points every setting at it (APP_ROOT, CONNECTORS_DIR, DBT_PROJECT_DIR,
CODE_LOCATIONS_FILE), and PYTHONPATH puts the copy's `dagster_code` and `pyairbyte` ahead of the
editable install, so code the CLI generates there is what subprocesses import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dataplatform.lifecycle.orders_api import OrdersApi
from tests.helpers import exported_env

REPO_ROOT = Path(__file__).resolve().parents[3]
CONNECTOR_YAML = Path(__file__).with_name("connector") / "orders-api.yaml"
API_KEY = "shop-key-7f3a"
CLI = str(Path(sys.executable).with_name("dataplatform"))
# Not part of the tree the commands are judged on: git's own files and dbt's scratch output.
UNHASHED = {".git", "target", "logs"}


def tracked_files(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (root / f).is_file()]


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


@dataclass
class RepoCopy:
    root: Path
    env: dict[str, str]

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600):
        return subprocess.run(
            [CLI, *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python(self, code: str, timeout: float = 600):
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def script(self, name: str, timeout: float = 600):
        """One of the copy's platform/ scripts (start.sh, stop.sh) with the copy's env."""
        return subprocess.run(
            ["bash", str(self.root / "platform" / name)],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def tree_hash(self) -> dict[str, str]:
        """Path -> sha256 of every file (untracked ones included), minus git and dbt scratch."""
        hashes = {}
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root)
            if rel.parts[0] in UNHASHED or any(p in UNHASHED for p in rel.parts[:2]):
                continue
            if path.is_file():
                hashes[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir():
                hashes[f"{rel}/"] = "dir"
        return hashes

    def git_status(self) -> str:
        return _git(self.root, "status", "--porcelain", "--untracked-files=all")

    def restore(self) -> None:
        """Back to the committed copy (tracked files restored, untracked ones deleted)."""
        _git(self.root, "checkout", "--", ".")
        _git(self.root, "clean", "-fdq", "-e", "dbt_models/target")


def make_copy(dest: Path) -> RepoCopy:
    dest.mkdir(parents=True, exist_ok=True)
    for rel in tracked_files(REPO_ROOT):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / rel, target)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(
        dest,
        "-c", "user.name=lifecycle-tests",
        "-c", "user.email=lifecycle-tests@localhost",
        "commit", "-q", "-m", "baseline",
    )  # fmt: skip
    env = {
        **os.environ,
        "APP_ROOT": str(dest),
        "CONNECTORS_DIR": str(dest / "data-manager" / "external-connectors"),
        "DBT_PROJECT_DIR": str(dest / "dbt_models"),
        "DBT_PROFILES_DIR": str(dest / "dbt_models"),
        "CODE_LOCATIONS_FILE": str(dest / "data-manager/resources/dagster/code-locations.json"),
        "PYTHONPATH": os.pathsep.join([str(dest), str(dest / "data-manager")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return RepoCopy(dest, env)


@pytest.fixture
def repo_copy(tmp_path) -> RepoCopy:
    return make_copy(tmp_path / "repo")


@pytest.fixture(scope="module")
def orders_api():
    """The shop API, with ORDERS_API_URL / ORDERS_API_KEY exported for the CLI and syncs."""
    api = OrdersApi(API_KEY).start()
    with exported_env(ORDERS_API_URL=api.url, ORDERS_API_KEY=API_KEY):
        yield api
    api.stop()
