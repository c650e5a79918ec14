"""The one module that uses private dagster-dbt internals (and one of CPython's, for dbt's fork).

`dagster-dbt` is pinned exactly in pyproject.toml and `check_dagster_dbt_version()` refuses any
other release when the dbt resource is built. tests/dagster_code/test_dbt_internals.py runs each
item below through the real library, so an upgrade that changes them fails there.

1. `DbtCliResource._cli_version` (a cached property): the stock resource learns dbt's version by
   running `dbt --version`, a 3-4 s dbt start-up in every run. `SkipVersionProbe` reads it from
   the installed dbt-core when the executable is this environment's own dbt. No upstream issue
   found; public alternative would be a `dbt_version` field on `DbtCliResource`.
2. `DbtCliResource._initialize_dbt_core_adapter`: loads dbt's adapter (2-4 s) into the run
   worker, only for `fetch_row_counts()` / `fetch_column_metadata()`, which the platform does not
   call. No upstream issue found; public alternative would be loading the adapter lazily, on
   the first call that needs it.
3. `multiprocessing.util._exit_function`: a forked dbt process leaves with `os._exit`, which
   skips atexit; this is the atexit hook that unlinks dbt's multiprocessing locks (otherwise
   the shared resource tracker reports them as leaked). CPython documents no public way to run
   one module's exit hook.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path

from dagster_dbt import DbtCliResource
from packaging import version

SUPPORTED_DAGSTER_DBT_VERSION = "0.29.27"


class UnsupportedDagsterDbtVersion(RuntimeError):
    pass


def check_dagster_dbt_version(installed: str | None = None) -> None:
    installed = installed or metadata.version("dagster-dbt")
    if installed != SUPPORTED_DAGSTER_DBT_VERSION:
        raise UnsupportedDagsterDbtVersion(
            f"dagster_code.lib.dbt_internals overrides private methods of dagster-dbt "
            f"{SUPPORTED_DAGSTER_DBT_VERSION}, but {installed} is installed. Fix: install the "
            "version pinned in pyproject.toml (`uv sync --frozen`), or re-check the overrides "
            "(tests/dagster_code/test_dbt_internals.py) and update the pin"
        )


class SkipVersionProbe(DbtCliResource):
    """`DbtCliResource` without its two start-up costs (items 1 and 2 above)."""

    @cached_property
    def _cli_version(self) -> version.Version:
        executable = Path(self.dbt_executable)
        if executable.parent == Path(sys.executable).parent:
            try:
                return version.parse(metadata.version("dbt-core"))
            except metadata.PackageNotFoundError:
                pass
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def run_multiprocessing_exit_hook() -> None:
    """What atexit would run for multiprocessing in a process about to `os._exit` (item 3)."""
    from multiprocessing import util

    util._exit_function()
