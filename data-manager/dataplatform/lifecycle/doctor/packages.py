"""Code location packages: each entry has its package, each package its entry, and each enabled
module imports in a clean process, from this repository, without pulling in airbyte."""

from __future__ import annotations

import re
from pathlib import Path

from dataplatform.lifecycle.doctor.report import ERROR, WARNING, Report
from dataplatform.lifecycle.probe import probe_modules
from dataplatform.lifecycle.project import Project, entries_by_name
from dataplatform.runtime import derived_configs

# Folders of dagster_code/ that are shared code, not code locations.
NON_LOCATION_PACKAGES = frozenset({"lib", "__pycache__"})


def _looks_like_location(path: Path) -> bool:
    if (path / "assets").is_dir() or (path / "jobs").is_dir():
        return True
    init = path / "__init__.py"
    return init.is_file() and re.search(r"^defs\s*=", init.read_text(), re.MULTILINE) is not None


def _has_python(path: Path) -> bool:
    return any(p.suffix == ".py" for p in path.rglob("*") if "__pycache__" not in p.parts)


def _dirs_missing_init(package: Path) -> list[Path]:
    return [
        d
        for d in [package, *sorted(p for p in package.rglob("*") if p.is_dir())]
        if "__pycache__" not in d.parts
        and any(f.suffix == ".py" for f in d.iterdir())
        and not (d / "__init__.py").exists()
    ]


def check_packages(project: Project, doc: dict, report: Report) -> list[str]:
    """Package layout and orphans; returns the modules worth importing."""
    to_probe = []
    claimed: set[Path] = set()
    for name, entry in entries_by_name(doc).items():
        module = entry.get("module")
        if not isinstance(module, str):
            continue
        enabled = entry.get("enabled", True)
        parts = module.split(".")
        if parts[0] != "dagster_code":
            if enabled:
                to_probe.append(module)
            continue
        package = project.dagster_code.joinpath(*parts[1:])
        claimed.add(package)
        if not package.is_dir() or not _has_python(package):
            if enabled:
                report.add(
                    ERROR,
                    "orphans",
                    f"code-locations.json entry {name!r} points at {module}, but "
                    f"{project.relative(package)} has no Python package",
                    f"restore the package, or drop the entry: dataplatform connector remove {name}",
                )
            continue
        for directory in _dirs_missing_init(package):
            report.add(
                ERROR,
                "packages",
                f"{project.relative(directory)}/ has Python files but no __init__.py, so "
                f"{module} cannot import from it",
                f"create it: touch {project.relative(directory / '__init__.py')}",
            )
        if enabled:
            to_probe.append(module)
    _check_unclaimed(project, claimed, report)
    return to_probe


def _check_unclaimed(project: Project, claimed: set[Path], report: Report) -> None:
    """Folders of dagster_code/ that no entry serves: stale bytecode or a forgotten location."""
    if not project.dagster_code.is_dir():
        return
    for path in sorted(p for p in project.dagster_code.iterdir() if p.is_dir()):
        if path in claimed or path.name in NON_LOCATION_PACKAGES or path.name[0] in "._":
            continue
        if not _has_python(path):
            report.add(
                ERROR,
                "orphans",
                f"{project.relative(path)}/ holds only cached bytecode (a removed location?); "
                "stale __pycache__ can keep a removed module importable",
                f"rm -rf {project.relative(path)}",
            )
        elif _looks_like_location(path):
            report.add(
                ERROR,
                "orphans",
                f"{project.relative(path)}/ is a code location package with no entry in "
                "code-locations.json, so the platform never serves it",
                f'add an entry (name "{path.name}", module "dagster_code.{path.name}", the '
                f"next free port) and run {derived_configs.REGENERATE}; or delete it: "
                f"dataplatform connector remove {path.name}",
            )


def check_imports(project: Project, modules: list[str], report: Report) -> dict[str, dict]:
    """Probe each module in a clean process; returns the probe's results (module -> result)."""
    results = probe_modules(modules, project.root)
    for module, result in results.items():
        if not result.get("ok"):
            report.add(
                ERROR,
                "imports",
                f"{module}: {result.get('error')}",
                f"see the traceback: python -c 'import {module}'",
            )
            continue
        file = result.get("file")
        if file and project.root.resolve() not in Path(file).resolve().parents:
            report.add(
                ERROR,
                "imports",
                f"{module} is imported from {file}, outside {project.root}: the checks "
                "would look at another copy of the code",
                "run with the environment of this repository (APP_ROOT, PYTHONPATH)",
            )
        if result.get("imports_airbyte"):
            report.add(
                WARNING,
                "imports",
                f"loading {module} imports airbyte (8-15 s and ~320 MB in every code server)",
                "import airbyte (or modules that do) inside the asset function",
            )
    return results
