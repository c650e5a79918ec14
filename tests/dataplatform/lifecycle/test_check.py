"""`dataplatform check` on a copy of the repository: clean as committed, and each classic mistake
from the guide's Troubleshooting section, seeded one at a time, is reported with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataplatform.local.sample_api import SampleProductsApi
from tests.dataplatform.lifecycle.conftest import make_copy
from tests.helpers import exported_env, scalar


@pytest.fixture(scope="module")
def products_in_cache(pg):
    """pyairbyte_cache.products from a real sample sync, so the column checks have a table."""
    import psycopg2

    from pyairbyte.utils.pyairbyte_sync import sync_connector

    with psycopg2.connect(**pg.psycopg2_kwargs()) as conn:
        if scalar(conn, "select to_regclass('pyairbyte_cache.products') is not null"):
            return
    api = SampleProductsApi().start()
    try:
        with exported_env(SAMPLE_API_URL=api.url):
            result = sync_connector("sample-connector", ["products"])
        assert result["status"] == "success", result["error"]
    finally:
        api.stop()


@pytest.fixture(scope="module")
def checked_copy(pg, products_in_cache, tmp_path_factory):
    return make_copy(tmp_path_factory.mktemp("check") / "repo")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer contains {old!r}; update the seed"
    path.write_text(text.replace(old, new, 1))


def seed_port_mismatch(root: Path) -> None:
    ws = root / "platform/workspace.yaml"
    _edit(
        ws,
        "      port: 4268\n      location_name: sample_product_sync",
        "      port: 4290\n      location_name: sample_product_sync",
    )


def seed_missing_init(root: Path) -> None:
    (root / "dagster_code/sample_product_sync/assets/__init__.py").unlink()


def seed_source_without_schema(root: Path) -> None:
    path = root / "dbt_models/models/sample_connector_sources.yml"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.strip().startswith("schema:")))


def seed_camel_case_column(root: Path) -> None:
    _edit(
        root / "dbt_models/models/staging/staging_products.sql",
        "discountpercentage::numeric(5, 2)",
        "discountPercentage::numeric(5, 2)",
    )


def seed_unset_variable(root: Path) -> None:
    _edit(
        root / "data-manager/external-connectors/sample-connector.yaml",
        "  page_size: 10\n",
        "  page_size: 10\n  api_token: ${SAMPLE_API_TOKEN_NOT_SET}\n",
    )


def seed_table_materialized_twice(root: Path) -> None:
    """The issue's catalogue: dbt_poc materializes staging_products again, under its own key."""
    init = root / "dagster_code/dbt_poc/__init__.py"
    init.write_text(
        init.read_text()
        + "\nfrom dagster import Definitions, asset\n\n\n"
        + '@asset(key=["dbt_poc", "staging_products"],'
        + ' metadata={"dagster/table_name": "dataplatform.staging.staging_products"})\n'
        + "def staging_products_again():\n    pass\n\n\n"
        + "defs = Definitions.merge(defs, Definitions(assets=[staging_products_again]))\n"
    )


STAGING_PRODUCTS = Path(__file__).parents[3] / "dbt_models/models/staging/staging_products.sql"
CAMEL_LINE = next(
    n
    for n, line in enumerate(STAGING_PRODUCTS.read_text().splitlines(), 1)
    if "discountpercentage::numeric(5, 2)" in line
)

SEEDS = {
    "port-differs-in-workspace": (
        seed_port_mismatch,
        "ERROR   [config-files] platform/workspace.yaml serves sample_product_sync on port 4290, "
        "but code-locations.json says port 4268",
        "fix: dataplatform configs write",
    ),
    "missing-__init__": (
        seed_missing_init,
        "ERROR   [packages] dagster_code/sample_product_sync/assets/ has Python files but no "
        "__init__.py",
        "fix: create it: touch dagster_code/sample_product_sync/assets/__init__.py",
    ),
    "source-without-schema": (
        seed_source_without_schema,
        "ERROR   [dbt] dbt_models/models/sample_connector_sources.yml: source 'sample_connector' "
        "declares no `schema:`",
        "fix: add `schema: pyairbyte_cache` under `- name: sample_connector`",
    ),
    "camelCase-column": (
        seed_camel_case_column,
        f"ERROR   [dbt-columns] dbt_models/models/staging/staging_products.sql:{CAMEL_LINE}: "
        "discountPercentage is not a column of the cache table; the cache lowercases names, "
        "the column is discountpercentage",
        "fix: write discountpercentage",
    ),
    "table-materialized-twice": (
        seed_table_materialized_twice,
        "ERROR   [assets] table staging.staging_products is materialized by 2 assets: "
        "dbt_poc/staging_products (dbt_poc), staging_products (sample_product_sync)",
        "fix: let one location own the table",
    ),
    "unset-variable": (
        seed_unset_variable,
        "field 'config.api_token': environment variable SAMPLE_API_TOKEN_NOT_SET is not set and "
        "has no default",
        "fix: export SAMPLE_API_TOKEN_NOT_SET=<value>",
    ),
}


def test_check_is_clean_on_the_repository_as_committed(checked_copy):
    out = checked_copy.cli("check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("check: 0 error(s), 0 warning(s)")
    # The database was reachable, so the staging models were checked against real tables.
    assert "not reachable" not in out.stdout


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_check_reports_each_seeded_mistake_with_its_fix(checked_copy, seed):
    apply_seed, finding, fix = SEEDS[seed]
    apply_seed(checked_copy.root)
    try:
        out = checked_copy.cli("check")
    finally:
        checked_copy.restore()
    assert out.returncode == 1, out.stdout
    assert finding in out.stdout
    after = out.stdout.split(finding, 1)[1]
    assert after.splitlines()[1].strip().startswith(fix), out.stdout


def test_check_without_a_database_skips_the_column_checks_with_a_note(checked_copy):
    out = checked_copy.cli("check", env={"POSTGRES_PORT": "1", "POSTGRES_HOST": "127.0.0.1"})
    assert out.returncode == 0, out.stdout
    assert "NOTE    [database] PostgreSQL 127.0.0.1:1/" in out.stdout
    assert "skipped the checks of staging models against the cache tables" in out.stdout
