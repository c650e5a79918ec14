"""Write a set of file changes all together, or not at all.

    txn = FileTransaction(root)
    txn.write(path, text)          # create or change
    txn.delete(path)               # a file
    txn.delete_tree(path)          # a directory and everything in it (incl. __pycache__)
    txn.staged(path)               # the bytes staged for a path (None: none)
    print(txn.describe())          # the plan, relative to root; nothing written yet
    with txn.applied():            # writes everything; an exception in the block (or while
        verify()                   # writing) restores every file byte for byte

Originals are read into memory before the first write, so a rollback needs no temporary files
on disk. Each file is replaced with write-to-temp + os.replace, so a reader never sees half a
file. Directories the transaction created are removed again on rollback.
"""

from __future__ import annotations

import os
import shutil
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _Original:
    path: Path
    content: bytes | None  # None: the file did not exist
    mode: int | None = None


@dataclass
class Plan:
    create: list[Path] = field(default_factory=list)
    change: list[Path] = field(default_factory=list)
    delete: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.change or self.delete)


class FileTransaction:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._writes: dict[Path, bytes] = {}
        self._deletes: set[Path] = set()
        self._tree_deletes: list[Path] = []
        self._originals: list[_Original] = []
        self._created_dirs: list[Path] = []
        self._applied = False

    # --- staging ---------------------------------------------------------------------------

    def write(self, path: Path, content: str | bytes) -> None:
        path = Path(path)
        data = content.encode() if isinstance(content, str) else content
        self._deletes.discard(path)
        self._writes[path] = data

    def delete(self, path: Path) -> None:
        path = Path(path)
        self._writes.pop(path, None)
        if path.exists() or path.is_symlink():
            self._deletes.add(path)

    def delete_tree(self, path: Path) -> None:
        path = Path(path)
        if path.is_dir():
            self._tree_deletes.append(path)
            for child in sorted(path.rglob("*")):
                if child.is_file() or child.is_symlink():
                    self.delete(child)

    def staged(self, path: Path) -> bytes | None:
        """What `write` staged for `path` (None: nothing)."""
        return self._writes.get(Path(path))

    def plan(self) -> Plan:
        plan = Plan()
        for path, data in sorted(self._writes.items()):
            if not path.exists():
                plan.create.append(path)
            elif path.read_bytes() != data:
                plan.change.append(path)
        plan.delete = sorted(self._deletes)
        return plan

    def describe(self) -> str:
        plan = self.plan()
        if plan.empty:
            return "  (no file changes)"
        lines = [f"  create  {self.relative(p)}" for p in plan.create]
        lines += [f"  change  {self.relative(p)}" for p in plan.change]
        lines += [
            f"  delete  {self.relative(p)}" for p in plan.delete if "__pycache__" not in p.parts
        ]
        cached = [p for p in plan.delete if "__pycache__" in p.parts]
        if cached:
            lines.append(f"  delete  {len(cached)} cached bytecode file(s) (__pycache__)")
        return "\n".join(lines)

    def relative(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    # --- applying --------------------------------------------------------------------------

    @contextmanager
    def applied(self):
        """Apply every staged change; roll all of them back if the block raises."""
        self.apply()
        try:
            yield self
        except BaseException:
            self.rollback()
            raise

    def apply(self) -> Plan:
        if self._applied:
            raise RuntimeError("a FileTransaction is applied once")
        plan = self.plan()
        touched = [*plan.create, *plan.change, *plan.delete]
        links = [p for p in touched if p.is_symlink()]
        if links:  # a rollback could not restore them byte for byte
            raise RuntimeError(f"{links[0]} is a symlink; change it by hand")
        # Remember every original before the first change.
        for path in touched:
            if path.exists():
                mode = stat.S_IMODE(path.stat().st_mode)
                self._originals.append(_Original(path, path.read_bytes(), mode))
            else:
                self._originals.append(_Original(path, None))
        self._applied = True
        try:
            for path in [*plan.create, *plan.change]:
                self._make_parents(path.parent)
                _replace_file(path, self._writes[path])
            for path in plan.delete:
                path.unlink()
            for tree in sorted(self._tree_deletes, key=lambda p: len(p.parts), reverse=True):
                _remove_empty_dirs(tree)
        except BaseException:
            self.rollback()
            raise
        return plan

    def rollback(self) -> None:
        for original in reversed(self._originals):
            path = original.path
            if original.content is None:
                if path.exists() or path.is_symlink():
                    path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                _replace_file(path, original.content, original.mode)
        # Directories we created, deepest first; anything inside them (e.g. __pycache__ from a
        # verification import) did not exist before either.
        for directory in sorted(self._created_dirs, key=lambda p: len(p.parts), reverse=True):
            shutil.rmtree(directory, ignore_errors=True)
        self._originals.clear()
        self._created_dirs.clear()

    def _make_parents(self, directory: Path) -> None:
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for d in reversed(missing):
            d.mkdir()
            self._created_dirs.append(d)


def _replace_file(path: Path, data: bytes, mode: int | None = None) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _remove_empty_dirs(tree: Path) -> None:
    """Remove the now-empty directories of a deleted tree (files are already gone)."""
    if not tree.exists():
        return
    for directory in sorted(
        (p for p in tree.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        if not any(directory.iterdir()):
            directory.rmdir()
    if not any(tree.iterdir()):
        tree.rmdir()
