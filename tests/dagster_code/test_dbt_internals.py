"""The private dagster-dbt and CPython internals that lib/dbt_internals.py relies on."""

from __future__ import annotations

import subprocess
from importlib import metadata

import pytest
from dagster_dbt import DbtCliResource

from dagster_code.lib import dbt_internals
from dagster_code.lib.dbt import dbt_resource


def test_the_overridden_hooks_exist_on_the_stock_resource():
    # A rename upstream would leave our overrides as dead methods and bring the costs back.
    assert "_cli_version" in DbtCliResource.__dict__
    assert callable(DbtCliResource._initialize_dbt_core_adapter)


def test_the_dbt_version_comes_from_the_installed_package_without_running_dbt(monkeypatch):
    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"dbt was started: {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    resource = dbt_resource()
    assert str(resource._cli_version) == metadata.version("dbt-core")
    assert resource._initialize_dbt_core_adapter(["build"]) is None


def test_another_dagster_dbt_release_is_refused_with_the_fix():
    dbt_internals.check_dagster_dbt_version()  # the pinned one passes
    with pytest.raises(dbt_internals.UnsupportedDagsterDbtVersion, match=r"0\.30\.0 is installed"):
        dbt_internals.check_dagster_dbt_version("0.30.0")


def test_the_multiprocessing_exit_hook_still_exists():
    from multiprocessing import util

    assert callable(util._exit_function)
