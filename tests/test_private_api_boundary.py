"""Private internals of Dagster, dagster-dbt, PyAirbyte and CPython are used only in the adapter
modules (tests/private_api.py finds the sites; `python -m tests.private_api` prints them)."""

import pytest

from tests.private_api import ADAPTERS, scan

pytestmark = pytest.mark.slow  # imports dagster, dagster-dbt and airbyte to check overrides


def test_private_internals_are_used_only_inside_the_adapters():
    outside = [str(site) for site in scan() if site.path not in ADAPTERS]
    assert outside == [], "\n".join(
        ["private internals outside the adapter modules; move them into one:", *outside]
    )


def test_the_scanner_finds_a_private_use(tmp_path, monkeypatch):
    # The scan must not pass by finding nothing: a planted private import is reported.
    import tests.private_api as private_api

    planted = tmp_path / "pkg"
    planted.mkdir()
    (planted / "mod.py").write_text(
        "from dagster._core.events import DagsterEventType\n"
        "def f(source):\n    return source._get_spec()\n"
    )
    monkeypatch.setattr(private_api, "PRODUCT_DIRS", (planted,))
    monkeypatch.setattr(private_api, "ROOT", tmp_path)
    found = {(s.kind, s.what) for s in private_api.scan()}
    assert found == {("imports", "dagster._core.events"), ("attribute", "_get_spec")}
