"""`dataplatform connector add` / `remove` on a copy of the repository, end to end.

The connector is new to the repo (tests/lifecycle/connector/orders-api.yaml): cursor and
page-number pagination, camelCase keys, nested objects with date-times, arrays, and an API key
header from ${ORDERS_API_KEY} that the local shop API checks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.dataplatform.lifecycle.conftest import CONNECTOR_YAML, make_copy
from tests.dataplatform.lifecycle.orders_api import make_customers, make_orders
from tests.helpers import column_types, rows, scalar

LOCATION = "shop_orders"
CODE_LOCATIONS = "data-manager/resources/dagster/code-locations.json"

RUN_JOB = """
import json, sys
from dagster import DagsterInstance
from dagster_code.shop_orders import defs
result = defs.resolve_job_def("shop_orders_pipeline").execute_in_process(
    instance=DagsterInstance.ephemeral(), raise_on_error=False
)
errors = [str(e.step_failure_data.error.message) for e in result.all_events if e.is_step_failure]
print(json.dumps({"success": result.success, "errors": errors}))
"""


def _next_free_port(copy) -> int:
    doc = json.loads((copy.root / CODE_LOCATIONS).read_text())
    used = {entry["port"] for entry in doc["code_locations"]}
    return next(p for p in range(4266, 4300) if p not in used)


@pytest.fixture(scope="module")
def added(pg, orders_api, tmp_path_factory):
    """A copy of the repo after `connector add shop_orders`, with the CLI's output."""
    copy = make_copy(tmp_path_factory.mktemp("added") / "repo")
    copy.port = _next_free_port(copy)
    before = copy.tree_hash()
    dry = copy.cli(
        "connector", "add", LOCATION, "--connector-yaml", str(CONNECTOR_YAML), "--dry-run"
    )
    copy.dry_run = (dry, copy.tree_hash() == before)
    copy.result = copy.cli("connector", "add", LOCATION, "--connector-yaml", str(CONNECTOR_YAML))
    assert copy.result.returncode == 0, copy.result.stdout + copy.result.stderr
    return copy


def test_dry_run_prints_the_plan_and_writes_nothing(added):
    result, unchanged = added.dry_run
    assert result.returncode == 0, result.stderr
    assert unchanged
    for line in (
        "create  dagster_code/shop_orders/assets/sync_assets.py",
        "create  dbt_models/models/shop_orders_sources.yml",
        "create  dbt_models/models/staging/staging_orders.sql",
        "create  dbt_models/models/customers_reporting.sql",
        "create  data-manager/external-connectors/orders-api.yaml",
        "create  data-manager/external-connectors/manifests/orders-api.yaml",
        f"change  {CODE_LOCATIONS}",
        "change  platform/workspace.yaml",
        "change  docker-compose.yaml",
        "change  Dockerfile.data-manager",
        "dry run: nothing was written",
    ):
        assert line in result.stdout, result.stdout


def test_add_scaffolds_the_guide_layout_and_every_config(added):
    root = added.root
    package = root / "dagster_code" / LOCATION
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*.py")) == [
        "__init__.py",
        "assets/__init__.py",
        "assets/dbt_assets.py",
        "assets/sync_assets.py",
        "jobs/__init__.py",
        "jobs/pipeline_jobs.py",
        "location.py",
    ]
    # The guide's modules are one-line exports of what the factory built from location.py.
    assert (package / "assets/sync_assets.py").read_text() == (
        "from ..location import location\n\nsync_shop_orders = location.sync_asset\n"
    )
    entry = {
        e["name"]: e for e in json.loads((root / CODE_LOCATIONS).read_text())["code_locations"]
    }
    assert entry[LOCATION]["port"] == added.port
    assert entry[LOCATION]["module"] == "dagster_code.shop_orders"
    # What `connector remove` reads instead of the location's code.
    assert entry[LOCATION]["metadata"]["connector"] == "orders-api"
    assert entry[LOCATION]["metadata"]["dbt_source"] == LOCATION
    workspace = yaml.safe_load((root / "platform/workspace.yaml").read_text())
    served = {
        s["grpc_server"]["location_name"]: s["grpc_server"]["port"] for s in workspace["load_from"]
    }
    assert served[LOCATION] == added.port
    assert f'"127.0.0.1:{added.port}:{added.port}"' in (root / "docker-compose.yaml").read_text()
    dockerfile = (root / "Dockerfile.data-manager").read_text().splitlines()
    expose = [line for line in dockerfile if line.strip().startswith("EXPOSE")]
    assert str(added.port) in expose[0].split()
    # The connector YAML and its manifest were copied, unchanged.
    copied = root / "data-manager/external-connectors/orders-api.yaml"
    assert copied.read_bytes() == CONNECTOR_YAML.read_bytes()
    assert (root / "data-manager/external-connectors/manifests/orders-api.yaml").is_file()

    sources = yaml.safe_load((root / "dbt_models/models/shop_orders_sources.yml").read_text())
    source = sources["sources"][0]
    assert source["schema"] == "pyairbyte_cache"
    tables = {t["name"]: t for t in source["tables"]}
    assert tables["orders"]["identifier"] == "orders"  # pyairbyte_cache.<stream>, unprefixed
    assert tables["orders"]["meta"]["dagster"]["asset_key"] == ["pyairbyte_cache", "orders"]
    assert tables["orders"]["columns"] == [
        {"name": "orderid", "description": "Primary key", "data_tests": ["not_null", "unique"]}
    ]
    staging = (root / "dbt_models/models/staging/staging_orders.sql").read_text()
    assert "(shipping::jsonb ->> 'shippedAt')::timestamptz as shipping_shipped_at" in " ".join(
        staging.split()
    )


def test_generated_code_passes_the_project_lint(added):
    ruff = str(Path(sys.executable).with_name("ruff"))
    package = f"dagster_code/{LOCATION}"
    for args in (["check", package], ["format", "--check", package]):
        out = subprocess.run([ruff, *args], cwd=added.root, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_new_location_defs_load(added):
    out = added.python(
        "from dagster import Definitions\n"
        "from dagster_code.shop_orders import defs\n"
        "Definitions.validate_loadable(defs)\n"
        "import dagster_code.shop_orders as m, sys\n"
        "print(m.__file__)\n"
        "keys = defs.resolve_asset_graph().materializable_asset_keys\n"
        "print(sorted(k.to_user_string() for k in keys))\n"
        "print([j.name for j in defs.resolve_all_job_defs() if not j.name.startswith('__')])\n"
        "print('airbyte' in sys.modules)\n"
    )
    assert out.returncode == 0, out.stderr
    file, assets, jobs, airbyte_loaded = out.stdout.strip().splitlines()
    assert file.startswith(str(added.root))
    # One asset per table: each stream's cache table, each dbt model.
    assert assets == str(
        [
            "customers_reporting",
            "orders_reporting",
            "pyairbyte_cache/customers",
            "pyairbyte_cache/orders",
            "staging_customers",
            "staging_orders",
        ]
    )
    assert jobs == "['shop_orders_pipeline']"
    assert airbyte_loaded == "False"  # code servers stay light


def test_pipeline_job_runs_end_to_end(added, pg_conn):
    out = added.python(RUN_JOB)
    assert out.returncode == 0, out.stderr[-3000:]
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome["success"], outcome["errors"]

    orders, customers = make_orders(), make_customers()
    assert scalar(pg_conn, "select count(*) from pyairbyte_cache.orders") == len(orders)
    assert scalar(pg_conn, "select count(*) from pyairbyte_cache.customers") == len(customers)
    # Staging: snake_case names, each column typed from the JSON schema.
    assert column_types(pg_conn, "staging", "staging_orders") == {
        "order_id": "bigint",
        "customer_id": "bigint",
        "order_status": "character varying",
        "total_amount": "numeric",
        "item_count": "bigint",
        "is_gift": "boolean",
        "placed_at": "timestamp with time zone",
        "shipping": "jsonb",
        "shipping_carrier_name": "text",
        "shipping_tracking_code": "text",
        "shipping_shipped_at": "timestamp with time zone",
        "shipping_address": "jsonb",
        "line_items": "jsonb",
        "tags": "jsonb",
        "extracted_at": column_types(pg_conn, "pyairbyte_cache", "orders")["_airbyte_extracted_at"],
        "dbt_loaded_at": "timestamp with time zone",
    }
    staged = {
        r[0]: r[1:]
        for r in rows(
            pg_conn,
            "select order_id, placed_at, shipping_shipped_at, total_amount, line_items, "
            "shipping_carrier_name from staging.staging_orders",
        )
    }
    assert sorted(staged) == [o["orderId"] for o in orders]
    # A top-level date-time keeps its UTC offset only if the cache stores timestamptz: the stock
    # PostgresCache writes `timestamp without time zone` and drops "+02:00" (field notes, data
    # loss 2), which no staging cast can undo. Nested date-times are JSON text and stay exact.
    cache_keeps_offsets = (
        column_types(pg_conn, "pyairbyte_cache", "orders")["placedat"] == "timestamp with time zone"
    )
    for order in orders:
        placed_at, shipped_at, total, line_items, carrier = staged[order["orderId"]]
        if cache_keeps_offsets:
            assert placed_at == scalar(pg_conn, "select %s::timestamptz", (order["placedAt"],))
        want_shipped = order["shipping"]["shippedAt"]
        assert shipped_at == (
            scalar(pg_conn, "select %s::timestamptz", (want_shipped,)) if want_shipped else None
        )
        assert float(total) == order["totalAmount"]
        assert line_items == order["lineItems"]
        assert carrier == order["shipping"]["carrierName"]
    customer_columns = column_types(pg_conn, "staging", "staging_customers")
    assert customer_columns["signup_date"] == "date"
    assert customer_columns["loyalty_member_since"] == "timestamp with time zone"
    assert customer_columns["email_address"] == "character varying"
    assert scalar(pg_conn, "select count(*) from reporting.orders_reporting") == len(orders)
    assert scalar(pg_conn, "select count(*) from reporting.customers_reporting") == len(customers)


def test_check_is_clean_after_add(added):
    out = added.cli("check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ERROR" not in out.stdout
    assert "check: 0 error(s)" in out.stdout


def test_remove_with_drop_data_restores_the_tree_and_drops_only_its_tables(added, pg_conn):
    decoys = (
        ("pyairbyte_cache", "orders_v2"),  # a table whose name starts alike
        ("pyairbyte_cache", "customers_archive"),
        ("staging", "staging_orders_v2"),
    )
    with pg_conn.cursor() as cur:
        for schema, table in decoys:
            cur.execute(f'create schema if not exists "{schema}"')
            cur.execute(f'create table if not exists "{schema}"."{table}" as select 1 as id')
    ours = (
        ("pyairbyte_cache", "orders"),
        ("pyairbyte_cache", "customers"),
        ("staging", "staging_orders"),
        ("staging", "staging_customers"),
        ("reporting", "orders_reporting"),
        ("reporting", "customers_reporting"),
    )

    out = added.cli("connector", "remove", LOCATION, "--drop-data")
    assert out.returncode == 0, out.stdout + out.stderr
    assert added.git_status() == ""

    def exists(schema, table):
        return scalar(pg_conn, "select to_regclass(%s) is not null", (f'"{schema}"."{table}"',))

    assert [t for t in ours if exists(*t)] == []
    assert [t for t in decoys if not exists(*t)] == []
    assert (
        scalar(
            pg_conn,
            "select count(*) from pyairbyte_cache._airbyte_state "
            "where table_name in ('orders', 'customers')",
        )
        == 0
    )
    with pg_conn.cursor() as cur:
        for schema, table in decoys:
            cur.execute(f'drop table "{schema}"."{table}"')


# --- add that fails: a clear error, and the tree byte for byte as it was ----------------------


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("sample_product_sync", [], "code location 'sample_product_sync' already exists"),
        (
            LOCATION,
            ["--port", "4268"],
            "--port 4268 is already used by code location 'sample_product_sync'",
        ),
        (LOCATION, ["--port", "4300"], "--port 4300 is outside the code-location range 4266-4299"),
    ],
    ids=["existing-name", "taken-port", "port-out-of-range"],
)
def test_add_refuses_bad_input_and_changes_nothing(orders_api, repo_copy, name, args, message):
    before = repo_copy.tree_hash()
    out = repo_copy.cli("connector", "add", name, "--connector-yaml", str(CONNECTOR_YAML), *args)
    assert out.returncode == 1, out.stdout + out.stderr
    assert message in out.stderr
    assert "fix: " in out.stderr
    assert repo_copy.tree_hash() == before
    assert repo_copy.git_status() == ""


@pytest.mark.slow  # runs the connector's check and discover, then verifies
def test_add_with_a_source_that_fails_check_changes_nothing(orders_api, repo_copy):
    # This time the YAML already sits in external-connectors/ and is found by name
    # (orders_api -> `name: orders-api`), the other way `connector add` takes its connector.
    connectors = repo_copy.root / "data-manager/external-connectors"
    shutil.copy(CONNECTOR_YAML, connectors / CONNECTOR_YAML.name)
    shutil.copy(CONNECTOR_YAML.parent / "manifests/orders-api.yaml", connectors / "manifests")
    before = repo_copy.tree_hash()
    out = repo_copy.cli("connector", "add", "orders_api", env={"ORDERS_API_KEY": "wrong-key"})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the source's check failed, so nothing was added" in out.stderr
    assert "401" in out.stderr
    assert repo_copy.tree_hash() == before


@pytest.mark.slow  # runs the connector's check and discover, then verifies
def test_add_refuses_a_stream_whose_cache_table_another_connector_owns(orders_api, repo_copy):
    """Every connector writes pyairbyte_cache.<stream>: a second owner of `orders` is refused,
    naming the stream, the table, the connector that owns it and the fix."""
    sources = repo_copy.root / "dbt_models/models/sample_connector_sources.yml"
    sources.write_text(
        sources.read_text()
        + "      - name: orders\n"
        + "        meta:\n          dagster:\n"
        + '            asset_key: ["pyairbyte_cache", "orders"]\n'
    )
    before = repo_copy.tree_hash()
    out = repo_copy.cli("connector", "add", LOCATION, "--connector-yaml", str(CONNECTOR_YAML))
    assert out.returncode == 1, out.stdout + out.stderr
    assert (
        "stream 'orders' of orders-api would be synced into pyairbyte_cache.orders, which already "
        "belongs to connector sample-connector of code location sample_product_sync "
        "(dbt source 'sample_connector')"
    ) in " ".join(out.stderr.split())
    assert "fix: leave the stream out" in out.stderr
    assert "dataplatform connector remove sample_product_sync" in out.stderr
    assert repo_copy.tree_hash() == before


@pytest.mark.slow  # runs the connector's check and discover, then verifies
def test_add_that_fails_after_writing_rolls_every_file_back(orders_api, repo_copy):
    """The files are written, then verified (locations load, dbt parses): here dbt cannot parse
    the project, so the add is undone and the tree is byte for byte what it was."""
    broken = repo_copy.root / "dbt_models/models/broken.sql"
    broken.write_text("select * from {{ ref('no_such_model') }}\n")
    before = repo_copy.tree_hash()
    out = repo_copy.cli("connector", "add", LOCATION, "--connector-yaml", str(CONNECTOR_YAML))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the generated files did not verify, so every change was rolled back" in out.stderr
    assert "dbt parse failed" in out.stderr and "no_such_model" in out.stderr
    assert repo_copy.tree_hash() == before
