"""The installed distribution holds every module: a directory of Python files without an
`__init__.py` imports in an editable install but is left out of a wheel (and the Docker image)."""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_directory_of_modules_is_a_package_the_build_finds():
    found = set(find_packages(where=str(ROOT))) | set(
        find_packages(where=str(ROOT / "data-manager"))
    )
    for top, base in (("dagster_code", ROOT), ("pyairbyte", ROOT / "data-manager"),
                      ("dataplatform", ROOT / "data-manager")):  # fmt: skip
        for module in (base / top).rglob("*.py"):
            if "__pycache__" in module.parts:
                continue
            package = ".".join(module.parent.relative_to(base).parts)
            assert package in found, f"{module.parent} has no __init__.py"
