"""`connector remove` on the hand-written locations: shared files stay, shared models stop it."""

from __future__ import annotations

import pytest

# Each test copies the repo and `remove` then checks that the remaining locations load and dbt
# parses: minutes, so the whole module is in the slow tier (not `make test-fast`).
pytestmark = pytest.mark.slow


def _delete_cross_connector_models(repo_copy) -> None:
    """The shipped model that reads both sample connectors (dbt_poc's): `remove` rightly stops
    at it, so these tests delete it by hand first, as its error tells a user to."""
    for name in ("connector_row_counts.sql", "connector_row_counts.yml"):
        (repo_copy.root / "dbt_models/models" / name).unlink()


def test_remove_keeps_a_connector_yaml_another_location_uses(repo_copy):
    _delete_cross_connector_models(repo_copy)
    out = repo_copy.cli("connector", "remove", "sample_product_sync")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "kept the YAML of sample-connector: also used by sweden_sync" in out.stdout
    deleted = {
        line.split()[1] for line in repo_copy.git_status().splitlines() if line.startswith(" D")
    }
    assert "data-manager/external-connectors/sample-connector.yaml" not in deleted
    assert {
        "dagster_code/sample_product_sync/__init__.py",
        "dbt_models/models/sample_connector_sources.yml",
        "dbt_models/models/staging/staging_products.sql",
        "dbt_models/models/staging/staging_products.yml",
        "dbt_models/models/products_reporting.sql",
    } <= deleted
    check = repo_copy.cli("check", "--no-database")
    assert check.returncode == 0, check.stdout  # what is left still agrees with itself


def test_remove_stops_at_a_model_that_also_reads_another_connector(repo_copy):
    _delete_cross_connector_models(repo_copy)
    combined = repo_copy.root / "dbt_models/models/products_and_users.sql"
    combined.write_text(
        "select p.id, u.id as user_id from {{ ref('staging_products') }} p\n"
        "cross join {{ source('faker', 'users') }} u\n"
    )
    before = repo_copy.tree_hash()
    out = repo_copy.cli("connector", "remove", "sample_product_sync", "--drop-data")
    assert out.returncode == 1
    assert "products_and_users.sql reads faker.users as well as sample_product_sync's data" in (
        out.stderr
    )
    assert repo_copy.tree_hash() == before


def test_remove_of_an_unknown_location_names_the_known_ones(repo_copy):
    out = repo_copy.cli("connector", "remove", "nope")
    assert out.returncode == 1
    assert "no code location named 'nope'" in out.stderr
    assert "sample_product_sync" in out.stderr
