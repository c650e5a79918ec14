"""`dataplatform connector refresh-staging` and the doctor's staging warnings, end to end on a copy
of the repository: `connector add` generates the staging models, a "sync" then changes the cache
table (a column for an undeclared property, a typed sibling for a property whose type changed),
`dataplatform check` warns with the fix, and the refresh makes the model select the new columns,
after which the doctor is quiet.

The cache table and its column map are written here with the cache's own SQL
(`column_names.CREATE_MAP_SQL` / `INSERT_MAP_SQL`) in a schema of this module (CACHE_SCHEMA), so
the test does not depend on another module's sync into pyairbyte_cache.
"""

from __future__ import annotations

import pytest
from psycopg2 import sql

from dataplatform.lifecycle.refresh_staging import _select_items
from pyairbyte.utils import column_names
from tests.dataplatform.lifecycle.conftest import CONNECTOR_YAML, make_copy

LOCATION = "shop_orders"
SCHEMA = "refresh_staging_cache"
STAGING_ORDERS = "dbt_models/models/staging/staging_orders.sql"
STAGING_CUSTOMERS = "dbt_models/models/staging/staging_customers.sql"
FIX = "fix: dataplatform connector refresh-staging shop_orders"

# What the cache creates for the orders API's streams (their JSON schemas, columns assigned by
# column_names.assign_columns), as (property, SQL type).
ORDERS = {
    "orderId": "bigint",
    "customerId": "bigint",
    "orderStatus": "character varying",
    "totalAmount": "numeric",
    "itemCount": "bigint",
    "isGift": "boolean",
    "placedAt": "timestamp with time zone",
    "shipping": "jsonb",
    "lineItems": "jsonb",
    "tags": "jsonb",
}
CUSTOMERS = {
    "customerId": "bigint",
    "fullName": "character varying",
    "emailAddress": "character varying",
    "signupDate": "date",
    "loyalty": "jsonb",
}
PLATFORM = {
    "_airbyte_raw_id": "character varying",
    "_airbyte_extracted_at": "timestamp with time zone",
    "_airbyte_meta": "jsonb",
}


def _q(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _create_cache_table(cur, table: str, properties: dict[str, str]) -> None:
    """The table and its map rows, as the cache's first sync of the stream leaves them."""
    assigned = column_names.assign_columns(properties)
    columns = {assigned[p]: t for p, t in properties.items()} | PLATFORM
    cur.execute(
        sql.SQL("create table {}.{} ({})").format(
            _q(SCHEMA),
            _q(table),
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(_q(c), sql.SQL(t)) for c, t in columns.items()
            ),
        )
    )
    for prop, sql_type in properties.items():
        _map_row(cur, table, prop, sql_type, assigned[prop])


def _map_row(cur, table: str, prop: str, sql_type: str, column: str) -> None:
    cur.execute(column_names.map_sql(column_names.CREATE_MAP_SQL, SCHEMA))
    cur.execute(
        column_names.map_sql(column_names.INSERT_MAP_SQL, SCHEMA),
        {"table": table, "property": prop, "sql_type": sql_type, "column": column},
    )


def _staging_findings(stdout: str) -> list[str]:
    """The doctor's staging findings, each with its fix line."""
    lines = stdout.splitlines()
    return [
        f"{line.strip()}\n{lines[i + 1].strip()}"
        for i, line in enumerate(lines)
        if "[dbt-staging]" in line
    ]


@pytest.fixture(scope="module")
def copy(pg, orders_api, tmp_path_factory):
    """A copy of the repo after `connector add shop_orders`, its cache in SCHEMA."""
    import psycopg2

    copy = make_copy(tmp_path_factory.mktemp("refresh") / "repo")
    copy.env["CACHE_SCHEMA"] = SCHEMA
    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(_q(SCHEMA)))
    out = copy.cli("connector", "add", LOCATION, "--connector-yaml", str(CONNECTOR_YAML))
    assert out.returncode == 0, out.stdout + out.stderr
    copy.conn = conn
    yield copy
    with conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(_q(SCHEMA)))
    conn.close()


@pytest.mark.slow  # `connector add` and the refresh run the source's check and discover, dbt parse
def test_refresh_staging_end_to_end(copy):
    # Unknown NAME: refused, naming it and the fix; nothing changes.
    before = copy.tree_hash()
    out = copy.cli("connector", "refresh-staging", "no_such_location")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error: no code location or connector named 'no_such_location'" in out.stderr
    assert "fix: pass the name of a code location" in out.stderr
    # Known, but nothing synced yet: no cache table to refresh from.
    out = copy.cli("connector", "refresh-staging", LOCATION)
    assert out.returncode == 1, out.stdout + out.stderr
    message = " ".join(out.stderr.split())
    assert (
        "error: the cache tables of connector orders-api (code location shop_orders) do not "
        f"exist yet: {SCHEMA}.orders (stream 'orders'), {SCHEMA}.customers (stream 'customers')"
    ) in message
    assert "fix: run the job shop_orders_pipeline once" in message
    assert copy.tree_hash() == before

    # The first sync: tables with the columns the models were generated for. The doctor is quiet.
    with copy.conn.cursor() as cur:
        cur.execute(sql.SQL("create schema {}").format(_q(SCHEMA)))
        _create_cache_table(cur, "orders", ORDERS)
        _create_cache_table(cur, "customers", CUSTOMERS)
    out = copy.cli("check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert _staging_findings(out.stdout) == [], out.stdout
    assert f"{SCHEMA}.orders" not in out.stdout  # synced: its models were checked

    # A later sync: records carry an undeclared `giftMessage` (a jsonb column of its own), and
    # `orderStatus` changed type, so its new values go to a typed sibling column.
    with copy.conn.cursor() as cur:
        cur.execute(
            sql.SQL("alter table {}.orders add column giftmessage jsonb").format(_q(SCHEMA))
        )
        _map_row(cur, "orders", "giftMessage", "jsonb", "giftmessage")
        cur.execute(
            sql.SQL("alter table {}.orders add column orderstatus_jsonb jsonb").format(_q(SCHEMA))
        )
        _map_row(cur, "orders", "orderStatus", "jsonb", "orderstatus_jsonb")
    out = copy.cli("check")
    assert out.returncode == 0, out.stdout + out.stderr  # warnings: the model still works
    assert _staging_findings(out.stdout) == [
        f"WARNING [dbt-staging] {STAGING_ORDERS} does not select giftmessage, orderstatus_jsonb of "
        f"{SCHEMA}.orders: columns a sync added after the model was generated, so their values "
        "do not reach staging\n"
        f"{FIX} (regenerates the staging models from the cache table's columns and column map)",
        f"WARNING [dbt-staging] {STAGING_ORDERS} selects orderstatus of {SCHEMA}.orders, which "
        "is no longer where the cache stores property 'orderStatus': its values now go to the "
        "typed sibling column orderstatus_jsonb\n"
        f"{FIX} (regenerates the staging models from the cache table's columns and column map)",
    ], out.stdout

    customers_before = (copy.root / STAGING_CUSTOMERS).read_bytes()
    dry = copy.cli("connector", "refresh-staging", LOCATION, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run: nothing was written" in dry.stdout
    out = copy.cli("connector", "refresh-staging", LOCATION)
    assert out.returncode == 0, out.stdout + out.stderr
    # What changed, alias by alias; the other stream's model is untouched.
    assert f"  {STAGING_ORDERS} (stream orders, {SCHEMA}.orders):" in out.stdout
    assert "    ~ order_status: orderstatus -> orderstatus_jsonb" in out.stdout
    assert "    + gift_message: giftmessage" in out.stdout
    assert f"  {STAGING_CUSTOMERS}: unchanged (matches {SCHEMA}.customers)" in out.stdout
    assert f"  change  {STAGING_ORDERS}" in out.stdout
    assert "refreshed the staging models of code location shop_orders; dbt parses" in out.stdout
    assert (copy.root / STAGING_CUSTOMERS).read_bytes() == customers_before
    items = _select_items((copy.root / STAGING_ORDERS).read_text())
    assert items["order_status"] == "orderstatus_jsonb"
    assert items["gift_message"] == "giftmessage"
    assert "orderstatus" not in items.values()
    # Only that file changed since the add.
    changed = {k for k, v in copy.tree_hash().items() if before.get(k) != v}
    assert changed == {STAGING_ORDERS}

    out = copy.cli("check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert _staging_findings(out.stdout) == [], out.stdout
    assert "ERROR" not in out.stdout  # and the refreshed model plans against the table

    # Nothing left to do: said so, nothing written.
    again = copy.cli("connector", "refresh-staging", "orders-api")  # by connector name, too
    assert again.returncode == 0, again.stdout + again.stderr
    assert "the staging models of shop_orders already match their cache tables" in again.stdout
