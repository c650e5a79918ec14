"""Make PyAirbyte run offline and keep its files under the project directory.

PyAirbyte reads these variables once, when `airbyte` is first imported, so call
`configure_airbyte_environment()` before that import. Values already set in the environment win.

Why each one:
- AIRBYTE_OFFLINE_MODE / DO_NOT_TRACK: the connector registry and telemetry endpoints are not
  reachable from our hosts; offline mode makes `get_source` pip-install connectors from PyPI.
- AIRBYTE_PROJECT_DIR, AIRBYTE_INSTALL_DIR, AIRBYTE_CACHE_ROOT, AIRBYTE_LOGGING_ROOT,
  AIRBYTE_TEMP_DIR: otherwise connector venvs and staging files land in the current working
  directory and logs in /tmp.
- AIRBYTE_NO_UV: PyAirbyte installs connectors with `uv` when it is on PATH, else pip.
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
import threading
from pathlib import Path

from pyairbyte import settings


def airbyte_dirs() -> dict[str, Path]:
    root = settings.project_dir()
    return {
        "AIRBYTE_PROJECT_DIR": root / "airbyte",
        "AIRBYTE_INSTALL_DIR": root / "connectors",
        "AIRBYTE_CACHE_ROOT": root / "airbyte" / "cache",
        "AIRBYTE_LOGGING_ROOT": root / "logs" / "airbyte",
        "AIRBYTE_TEMP_DIR": root / "airbyte" / "tmp",
    }


def serialize_ast_parse() -> None:
    """Let only one thread at a time turn source into an AST, on CPython before 3.11.9.

    Those releases keep the AST constructor's recursion counter in per-interpreter state
    (CPython gh-106905). When a garbage collection inside one thread's `ast.parse` runs a
    finalizer that lets another thread in, and that thread parses too, the counter is reset
    under the first one, which then fails with "SystemError: AST constructor recursion depth
    mismatch". The declarative CDK calls `ast.literal_eval` for interpolated values from its
    worker threads, and a sync failed that way once in a CI run. A re-entrant lock (a finalizer
    in the same thread may parse) keeps other threads out; parsing a literal takes microseconds.
    """
    if sys.version_info >= (3, 11, 9) or getattr(ast.parse, "_serialized", False):
        return
    lock = threading.RLock()
    original = ast.parse

    def parse(*args, **kwargs):
        with lock:
            return original(*args, **kwargs)

    parse._serialized = True
    parse.__doc__ = original.__doc__
    ast.parse = parse


def configure_airbyte_environment(create_dirs: bool = True) -> None:
    serialize_ast_parse()
    os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    for name, path in airbyte_dirs().items():
        os.environ.setdefault(name, str(path))
        if create_dirs:
            Path(os.environ[name]).mkdir(parents=True, exist_ok=True)
    # uv may live next to our interpreter (project venv) rather than on PATH.
    venv_bin = str(Path(sys.executable).parent)
    if venv_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = venv_bin + os.pathsep + os.environ.get("PATH", "")
    if shutil.which("uv") is None:
        os.environ.setdefault("AIRBYTE_NO_UV", "1")


def connector_install_root() -> Path:
    return Path(os.environ.get("AIRBYTE_INSTALL_DIR") or airbyte_dirs()["AIRBYTE_INSTALL_DIR"])
