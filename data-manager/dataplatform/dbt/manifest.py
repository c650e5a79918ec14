"""Prepare the dbt manifest once, instead of `dbt parse` before every run as the guide does.

`ensure_manifest()` runs `dbt parse` only when target/manifest.json is missing or older than a
file it is built from (models, macros, tests, dbt_project.yml). Code locations call it when they
load; `make` and the Docker build (`python -m dataplatform.dbt.manifest`) and the local platform's
start (`dataplatform.local.platform`) call it ahead of time, so a code server finds it ready.
A file lock keeps code servers that start together from parsing into the same target/ at once.

Not dagster-dbt's `DbtProject.prepare_if_dev()`: that parses only under `dagster dev`, which the
platform never runs (dagster-init starts the code servers), so an edited model would go unparsed;
and its `prepare()` parses every time, through a Dagster import of several seconds.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

from dataplatform.dbt import settings

__all__ = ["DbtManifestError", "dbt_executable", "ensure_manifest", "is_stale", "manifest_path"]

_SOURCE_DIRS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")
_SOURCE_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml")


class DbtManifestError(RuntimeError):
    """`dbt parse` failed or dbt was not found."""


def dbt_executable() -> str:
    """`dbt` from PATH, else the one next to this interpreter (the project venv's bin/)."""
    found = shutil.which("dbt")
    if found:
        return found
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    raise DbtManifestError(
        "the dbt executable was not found on PATH or next to "
        f"{sys.executable}; install the project (`make install`) or put dbt on PATH"
    )


def manifest_path(project_dir: Path | None = None) -> Path:
    return (project_dir or settings.project_dir()) / "target" / "manifest.json"


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for name in _SOURCE_FILES:
        path = project_dir / name
        if path.exists():
            newest = max(newest, path.stat().st_mtime)
    for name in _SOURCE_DIRS:
        directory = project_dir / name
        if directory.is_dir():
            for path in directory.rglob("*"):
                newest = max(newest, path.stat().st_mtime)
            newest = max(newest, directory.stat().st_mtime)  # a deleted file changes the dir
    return newest


def is_stale(project_dir: Path | None = None) -> bool:
    project_dir = project_dir or settings.project_dir()
    manifest = manifest_path(project_dir)
    return not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime(project_dir)


def ensure_manifest(project_dir: Path | None = None, force: bool = False) -> Path:
    """Return target/manifest.json, running `dbt parse` first if it is missing or stale."""
    project_dir = project_dir or settings.project_dir()
    manifest = manifest_path(project_dir)
    if not force and not is_stale(project_dir):
        return manifest
    (project_dir / "target").mkdir(parents=True, exist_ok=True)
    with open(project_dir / "target" / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and not is_stale(project_dir):  # another process parsed meanwhile
            return manifest
        # Flags rather than env: dbt inherits this process's environment unchanged.
        result = subprocess.run(
            [
                dbt_executable(),
                "--quiet",
                "--no-send-anonymous-usage-stats",
                "parse",
                "--project-dir",
                str(project_dir),
                "--profiles-dir",
                str(settings.profiles_dir()),
            ],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not manifest.exists():
            raise DbtManifestError(
                f"`dbt parse` failed in {project_dir} (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
    return manifest


if __name__ == "__main__":
    path = ensure_manifest(force="--force" in sys.argv)
    print(f"dbt manifest ready: {path}")
