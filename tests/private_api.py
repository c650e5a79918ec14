"""Find the places where product code uses another library's private internals.

Run `python -m tests.private_api` for the report (per file and in total); the boundary test uses
`scan()`. A site is one of:
- an import from a private module of another package (`from dagster._grpc import server`), or of a
  private name (`from airbyte.caches.base import _something`);
- a dotted private module path written as a string (a preload list names `dagster._core.…`);
- `obj._name` where no module of the project defines `_name` (no `def _name`, `_name = …`,
  `self._name = …`, class attribute or parameter), so the attribute belongs to a library;
- a `_name` method defined in a class that subclasses a library class which has that attribute,
  i.e. an override of a private hook.

Only the adapter modules (ADAPTERS) may hold sites. The scan is static, so it can miss a private use
reached through a variable holding a name string; it never counts the project's own privates.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_DIRS = (
    ROOT / "data-manager" / "pyairbyte",
    ROOT / "data-manager" / "dataplatform",
    ROOT / "dagster_code",
)
PROJECT_PACKAGES = {"pyairbyte", "dataplatform", "dagster_code", "tests"}
ADAPTERS = {
    "data-manager/dataplatform/runtime/dagster_internals.py",
    "data-manager/pyairbyte/utils/airbyte_internals.py",
    "dagster_code/lib/dbt_internals.py",
    "data-manager/dataplatform/runtime/multiprocessing_internals.py",
}
# Underscore names that the standard library documents as public.
DOCUMENTED = {"_exit", "_getframe", "_replace", "_asdict", "_fields", "_make", "_field_defaults"}
PRIVATE_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*\._[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


@dataclass(frozen=True)
class Site:
    path: str
    line: int
    kind: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.what}"


def product_files() -> list[Path]:
    return sorted(p for d in PRODUCT_DIRS for p in d.rglob("*.py") if "__pycache__" not in p.parts)


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _foreign(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] not in PROJECT_PACKAGES


def _project_privates(trees: dict[Path, ast.Module]) -> set[str]:
    """Every underscore name the project itself defines somewhere."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                # Also our markers on other objects (`parse._serialized = True`); the price: a
                # library's private field that we only ever assign is not found.
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
    return {n for n in names if _is_private(n)}


def _imported_bases(tree: ast.Module) -> dict[str, str]:
    """Local name -> 'module:attr' for names imported from other packages."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _foreign(node.module):
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}:{alias.name}"
    return out


def _private_overrides(tree: ast.Module, rel: str) -> Iterator[Site]:
    imported = _imported_bases(tree)
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        bases = []
        for base in cls.bases:
            if isinstance(base, ast.Name) and base.id in imported:
                module, attr = imported[base.id].split(":")
                try:
                    bases.append(getattr(importlib.import_module(module), attr))
                except Exception:  # noqa: BLE001 - an unimportable base cannot be checked
                    continue
        for item in cls.body:
            if (
                isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and _is_private(item.name)
                and any(hasattr(b, item.name) for b in bases)
            ):
                yield Site(rel, item.lineno, "overrides", f"{cls.name}.{item.name}")


def scan() -> list[Site]:
    trees = {p: ast.parse(p.read_text(), str(p)) for p in product_files()}
    own = _project_privates(trees)
    sites: list[Site] = []
    for path, tree in trees.items():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and _foreign(node.module):
                if any(_is_private(p) for p in node.module.split(".")):
                    sites.append(Site(rel, node.lineno, "imports", node.module))
                sites.extend(
                    Site(rel, node.lineno, "imports", f"{node.module}.{a.name}")
                    for a in node.names
                    if _is_private(a.name)
                    and not any(_is_private(p) for p in node.module.split("."))
                )
            elif isinstance(node, ast.Import):
                sites.extend(
                    Site(rel, node.lineno, "imports", a.name)
                    for a in node.names
                    if _foreign(a.name) and any(_is_private(p) for p in a.name.split("."))
                )
            elif isinstance(node, ast.Attribute) and _is_private(node.attr):
                if node.attr not in own and node.attr not in DOCUMENTED:
                    sites.append(Site(rel, node.lineno, "attribute", node.attr))
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and PRIVATE_PATH.match(node.value)
                and _foreign(node.value)
            ):
                sites.append(Site(rel, node.lineno, "module path", node.value))
        sites.extend(_private_overrides(tree, rel))
    return sorted(set(sites), key=lambda s: (s.path, s.line, s.what))


def main() -> int:
    sites = scan()
    by_file: dict[str, int] = {}
    for site in sites:
        print(site)
        by_file[site.path] = by_file.get(site.path, 0) + 1
    print()
    for path, count in sorted(by_file.items(), key=lambda kv: -kv[1]):
        marker = "" if path in ADAPTERS else "   <- outside the adapters"
        print(f"{count:4d}  {path}{marker}")
    print(f"{len(sites):4d}  private call sites in {len(by_file)} module(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
