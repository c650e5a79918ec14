"""The Python interpreter of a connector's venv: the connector YAML's `python:` key.

Why: many connectors on PyPI pin airbyte-cdk 0.x, which fails to import on Python 3.11
(`ValueError: mutable default ... JsonDecoder`). They work in a venv made with an older Python.
PyAirbyte's `use_python=` takes a version string too, but resolves it through uv, which downloads
the interpreter: that is unreachable here and not something a sync should do. So a version is
resolved here, to an interpreter already installed on the machine, and PyAirbyte gets its path.

Where interpreters are looked for, in this order:
- `pythonX.Y` on PATH (a pyenv shim is followed to the interpreter it runs);
- pyenv's versions: `$PYENV_ROOT/versions/X.Y.*/bin/python` (PYENV_ROOT defaults to ~/.pyenv).

`python: "3.10"` takes the newest 3.10.x found, `python: "3.10.13"` exactly that one, and a path
(absolute, `~/...`, or relative to the connector YAML) that interpreter. Anything else raises
`ConnectorConfigError` on the field `python`, listing the interpreters found.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pyairbyte.errors import ConnectorConfigError

__all__ = [
    "VERSION_PATTERN",
    "Interpreter",
    "find_interpreters",
    "interpreter_minor",
    "resolve_python",
]

VERSION_PATTERN = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")
_PROBE = "import sys; print(sys.executable); print('.'.join(map(str, sys.version_info[:3])))"


@dataclass(frozen=True, order=True)
class Interpreter:
    version: tuple[int, ...]
    path: Path

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def __str__(self) -> str:
        return f"{self.version_text} ({self.path})"


@cache
def _probe(candidate: str) -> Interpreter | None:
    """Run `candidate` to learn its real executable and version; None if it is not a Python.

    Cached per process: a sync asks once, not once per stream. A shim that cannot run this
    version (pyenv: "command not found") fails here and is skipped.
    """
    try:
        done = subprocess.run(
            [candidate, "-c", _PROBE], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return None
    try:
        version = tuple(int(part) for part in lines[1].split("."))
    except ValueError:
        return None
    return Interpreter(version=version, path=Path(lines[0]))


def _pyenv_root() -> Path:
    # pyenv's own variable; the machine's tooling, not a setting of this project.
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _candidates(minor: str | None) -> list[str]:
    names = [f"python{minor}"] if minor else [f"python3.{n}" for n in range(6, 20)]
    found = [path for name in names if (path := shutil.which(name))]
    pattern = f"{minor}.*" if minor else "3.*"
    found += [str(p) for p in sorted((_pyenv_root() / "versions").glob(f"{pattern}/bin/python"))]
    return found


def find_interpreters(minor: str | None = None) -> list[Interpreter]:
    """The distinct CPython 3 interpreters installed here (only `minor`, e.g. "3.10", if given),
    newest first."""
    interpreters = {i for c in _candidates(minor) if (i := _probe(c)) is not None}
    return sorted(interpreters, reverse=True)


def resolve_python(spec: str, yaml_path: Path) -> Path:
    """The interpreter a connector YAML's `python:` names, a version or a path (see above)."""
    if VERSION_PATTERN.match(spec):
        wanted = tuple(int(part) for part in spec.split("."))
        minor = ".".join(spec.split(".")[:2])
        matches = [i for i in find_interpreters(minor) if i.version[: len(wanted)] == wanted]
        if matches:
            return matches[0].path
        found = "; ".join(str(i) for i in find_interpreters()) or "none"
        raise ConnectorConfigError(
            yaml_path,
            "python",
            f"no Python {spec} is installed on this machine (looked on PATH for python{minor} "
            f"and under {_pyenv_root() / 'versions'}); interpreters found: {found}",
            "use one of the versions found, give the interpreter's path, or install Python "
            f"{spec} (e.g. `pyenv install {spec}`); versions are never downloaded by a sync",
        )
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = yaml_path.parent / path
    interpreter = _probe(str(path)) if path.is_file() else None
    if interpreter is None:
        found = "; ".join(str(i) for i in find_interpreters()) or "none"
        problem = "is not a Python interpreter" if path.is_file() else "does not exist"
        raise ConnectorConfigError(
            yaml_path,
            "python",
            f"{path} {problem}; interpreters found: {found}",
            'write a version such as `python: "3.10"`, or the path of an installed interpreter',
        )
    return path


def interpreter_minor(path: Path) -> str | None:
    """ "3.10" for a Python 3.10 interpreter; None if `path` does not run as Python."""
    found = _probe(str(path))
    return ".".join(map(str, found.version[:2])) if found else None
