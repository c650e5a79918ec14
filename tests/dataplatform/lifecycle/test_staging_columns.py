"""The staging codegen names each property's column as the cache does (`column_names`): distinct
columns for properties that normalise alike, the stored column map when the cache has one, and
the doctor's warning when a generated model no longer matches its cache table. Real PostgreSQL;
the end-to-end `connector refresh-staging` on a copy of the repository is in
test_refresh_staging.py."""

from __future__ import annotations

from pathlib import Path

from psycopg2 import sql

from dataplatform.lifecycle import dbt_codegen
from dataplatform.lifecycle.cache_tables import CacheTable, read_cache_table
from dataplatform.lifecycle.dbt_files import read_project
from dataplatform.lifecycle.discovery import DiscoveredStream
from dataplatform.lifecycle.doctor.report import WARNING, Report
from dataplatform.lifecycle.doctor.staging_drift import (
    check_staging_drift,
    is_generated,
    selected_columns,
)
from dataplatform.lifecycle.names import cache_name
from dataplatform.lifecycle.project import Project
from pyairbyte.utils import column_names

# Five properties, three column names if each were only normalised.
COLLIDING = {
    "a-b": {"type": "string"},
    "a_b": {"type": "integer"},
    "Email": {"type": "string"},
    "email": {"type": "string"},
    "_airbyte_raw_id": {"type": "string"},
}


def stream(properties: dict, name: str = "things", primary_key=None) -> DiscoveredStream:
    return DiscoveredStream(name, {"type": "object", "properties": properties}, primary_key or [])


def _columns_by_alias(columns) -> dict[str, str]:
    return {c.alias: c.expression for c in columns}


def test_cache_name_is_the_caches_normalizer():
    for name in [*COLLIDING, "discountPercentage", "1stPlace", "x" * 80, "ä-ö"]:
        assert cache_name(name) == column_names.normalize(name)


def test_colliding_properties_get_the_distinct_columns_the_cache_assigns():
    columns = dbt_codegen.staging_columns(stream(COLLIDING))
    assigned = column_names.assign_columns(COLLIDING)
    assert assigned == {
        "a-b": "a_b_2",
        "a_b": "a_b",
        "Email": "email_2",
        "email": "email",
        "_airbyte_raw_id": "_airbyte_raw_id_2",
    }
    by_alias = _columns_by_alias(columns)
    # Each property's column is the one assign_columns gives it, under a distinct alias.
    assert by_alias == {
        "a_b": "a_b_2",
        "a_b_2": "a_b::bigint",
        "email": "email_2",
        "email_2": "email",
        "airbyte_raw_id": "_airbyte_raw_id_2",
        "extracted_at": "_airbyte_extracted_at",
        "dbt_loaded_at": "current_timestamp",
    }
    selected = [c.expression.split("::")[0] for c in columns[:5]]
    assert selected == [assigned[p] for p in COLLIDING]
    assert len(set(selected)) == 5
    # The original property name is kept as a comment wherever the column differs from it.
    assert [c.comment for c in columns[:5]] == ["a-b", "", "Email", "", "_airbyte_raw_id"]


def test_primary_key_tests_name_the_assigned_column():
    models = dbt_codegen.plan_stream_models(
        stream(COLLIDING, primary_key=[["a-b"]]), "staging_things", "things_reporting"
    )
    text = dbt_codegen.render_sources_yaml("loc", "c", "loc", "pyairbyte_cache", "sync", [models])
    assert "          - name: a_b_2\n" in text


def _create_table(cur, schema: str, table: str, columns: dict[str, str]) -> None:
    cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    cur.execute(
        sql.SQL("create table {}.{} ({})").format(
            sql.Identifier(schema),
            sql.Identifier(table),
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns.items()
            ),
        )
    )


def _store_map(cur, schema: str, table: str, rows: list[tuple[str, str, str]]) -> None:
    """Rows (property, sql type, column) in the cache's column map, oldest first."""
    cur.execute(column_names.map_sql(column_names.CREATE_MAP_SQL, schema))
    for prop, sql_type, column in rows:
        cur.execute(
            column_names.map_sql(column_names.INSERT_MAP_SQL, schema),
            {"table": table, "property": prop, "sql_type": sql_type, "column": column},
        )


PLATFORM = {
    "_airbyte_raw_id": "varchar",
    "_airbyte_extracted_at": "timestamptz",
    "_airbyte_meta": "jsonb",
}


def test_the_generated_sql_runs_on_a_table_with_the_assigned_columns(pg_conn, cache_schema):
    assigned = column_names.assign_columns(COLLIDING)
    models = dbt_codegen.plan_stream_models(stream(COLLIDING), "staging_things", "r")
    with pg_conn.cursor() as cur:
        _create_table(
            cur,
            cache_schema,
            "things",
            {**{c: "varchar" if c != "a_b" else "bigint" for c in assigned.values()}, **PLATFORM},
        )
        cur.execute(
            sql.SQL(
                "insert into {}.things (a_b_2, a_b, email_2, email, _airbyte_raw_id_2, "
                "_airbyte_raw_id, _airbyte_extracted_at) values "
                "('dash', 7, 'UPPER', 'lower', 'source id', 'platform id', now())"
            ).format(sql.Identifier(cache_schema))
        )
        rendered = dbt_codegen.render_staging_sql("loc", "loc", models).replace(
            "{{ source('loc', 'things') }}", f'"{cache_schema}".things'
        )
        cur.execute(rendered)
        row = dict(zip([d.name for d in cur.description], cur.fetchone(), strict=False))
    assert (row["a_b"], row["a_b_2"]) == ("dash", 7)
    assert (row["email"], row["email_2"]) == ("UPPER", "lower")
    assert row["airbyte_raw_id"] == "source id"


def test_the_codegen_follows_the_stored_column_map(pg_conn, cache_schema):
    """Names the cache stored (here: an order the properties arrived in that gave `a-b` the
    plain name), a typed sibling that took over `price`, an undeclared property the cache kept
    as jsonb, and a property the table has no column for yet."""
    properties = {
        "a-b": {"type": "string"},
        "a_b": {"type": "string"},
        "price": {"type": "object"},  # was a number: the cache moved it to price_jsonb
        "note": {"type": "string"},  # declared since the last sync: no column yet
    }
    rows = [
        ("a-b", "character varying", "a_b"),
        ("a_b", "character varying", "a_b_2"),
        ("price", "numeric", "price"),
        ("extra", "jsonb", "extra"),  # undeclared; stored by the cache as jsonb
        ("price", "jsonb", "price_jsonb"),  # newest row: the current column
    ]
    with pg_conn.cursor() as cur:
        _create_table(
            cur,
            cache_schema,
            "things",
            {
                "a_b": "varchar",
                "a_b_2": "varchar",
                "price": "numeric",
                "extra": "jsonb",
                "price_jsonb": "jsonb",
                **PLATFORM,
            },
        )
        _store_map(cur, cache_schema, "things", rows)
        stored = column_names.read_column_map(cur, cache_schema, "things")
        table = read_cache_table(cur, cache_schema, "things")

    assert stored["price"] == ("price_jsonb", "jsonb")
    # The map alone: each property's current column (a new one gets a name the map leaves free).
    by_alias = _columns_by_alias(dbt_codegen.staging_columns(stream(properties), stored))
    assert by_alias["a_b"] == "a_b" and by_alias["a_b_2"] == "a_b_2"
    assert by_alias["price"] == "price_jsonb::jsonb"
    assert by_alias["note"] == "note"
    # Without the map the names differ: that is what the map is for.
    fresh = _columns_by_alias(dbt_codegen.staging_columns(stream(properties)))
    assert (fresh["a_b"], fresh["a_b_2"]) == ("a_b_2", "a_b")

    # With the table as it exists: the undeclared property is selected too, the column price
    # held before its sibling is not, and `note` waits for the sync that adds its column.
    assert table.stale_columns() == {"price": ("price", "price_jsonb")}
    models = dbt_codegen.plan_stream_models(stream(properties), "staging_things", "r", table)
    by_alias = _columns_by_alias(models.columns)
    assert by_alias == {
        "a_b": "a_b",
        "a_b_2": "a_b_2",
        "price": "price_jsonb::jsonb",
        "extra": "extra",
        "extracted_at": "_airbyte_extracted_at",
        "dbt_loaded_at": "current_timestamp",
    }
    assert models.pending == ["note"]
    with pg_conn.cursor() as cur:
        rendered = dbt_codegen.render_staging_sql("loc", "loc", models).replace(
            "{{ source('loc', 'things') }}", f'"{cache_schema}".things'
        )
        cur.execute("explain " + rendered)


def test_selected_columns_reads_the_select_list_not_aliases_types_or_strings():
    model_sql = dbt_codegen.render_staging_sql(
        "loc",
        "loc",
        dbt_codegen.plan_stream_models(
            stream(
                {
                    "order": {"type": "integer"},
                    "meta": {"type": "object", "properties": {"price": {"type": "number"}}},
                    "Source": {"type": "string"},
                }
            ),
            "staging_things",
            "r",
        ),
    )
    columns = {"order", "meta", "price", "source", "numeric", "jsonb", "meta_price", "unused"}
    # `price` is a JSON key (a string), `meta_price` an alias, `numeric` and `jsonb` types, and
    # `source` the CTE, not a column, outside the select list.
    assert selected_columns(model_sql, columns) == {"order", "meta", "source"}


def _dbt_project(root: Path, schema: str, model_sql: str) -> Project:
    models = root / "dbt_models" / "models"
    (models / "staging").mkdir(parents=True)
    (root / "dbt_models" / "dbt_project.yml").write_text("name: t\nversion: '1'\n")
    (models / "loc_sources.yml").write_text(
        f"version: 2\nsources:\n  - name: loc\n    schema: {schema}\n    tables:\n"
        "      - name: things\n"
    )
    (models / "staging" / "staging_things.sql").write_text(model_sql)
    return Project(
        root=root,
        dagster_code=root / "dagster_code",
        connectors_dir=root / "connectors",
        dbt_dir=root / "dbt_models",
        code_locations=root / "code-locations.json",  # absent: the fix names the dbt source
    )


def test_doctor_warns_when_a_sync_added_a_column_or_a_sibling(pg_conn, cache_schema, tmp_path):
    properties = {"id": {"type": "integer"}, "price": {"type": "number"}}
    with pg_conn.cursor() as cur:
        _create_table(cur, cache_schema, "things", {"id": "bigint", "price": "numeric", **PLATFORM})
        _store_map(
            cur, cache_schema, "things", [("id", "bigint", "id"), ("price", "numeric", "price")]
        )
        table = read_cache_table(cur, cache_schema, "things")
    models = dbt_codegen.plan_stream_models(stream(properties), "staging_things", "r", table)
    project = _dbt_project(
        tmp_path, cache_schema, dbt_codegen.render_staging_sql("loc", "loc", models)
    )
    dbt = read_project(project.dbt_dir)
    assert is_generated(dbt.models["staging_things"])

    def findings() -> list[str]:
        report = Report()
        with pg_conn.cursor() as cur:
            check_staging_drift(project, dbt, cur, report)
        assert all(f.severity == WARNING for f in report.findings)
        return [f"{f.message}\nfix: {f.fix}" for f in report.findings]

    assert findings() == []  # generated from the table as it is
    with pg_conn.cursor() as cur:  # a sync: an undeclared property, then price's type changed
        cur.execute(f'alter table "{cache_schema}".things add column coupon jsonb')
        cur.execute(f'alter table "{cache_schema}".things add column price_jsonb jsonb')
        _store_map(
            cur,
            cache_schema,
            "things",
            [("coupon", "jsonb", "coupon"), ("price", "jsonb", "price_jsonb")],
        )
    where = "dbt_models/models/staging/staging_things.sql"
    fix = (
        "fix: dataplatform connector refresh-staging loc (regenerates the staging models from "
        "the cache table's columns and column map)"
    )
    assert findings() == [
        f"{where} does not select coupon, price_jsonb of {cache_schema}.things: columns a sync "
        f"added after the model was generated, so their values do not reach staging\n{fix}",
        f"{where} selects price of {cache_schema}.things, which is no longer where the cache "
        "stores property 'price': its values now go to the typed sibling column price_jsonb"
        f"\n{fix}",
    ]
    # A hand-written model is its author's choice: not checked.
    model = project.models_dir / "staging" / "staging_things.sql"
    model.write_text("-- my own\n" + model.read_text())
    dbt = read_project(project.dbt_dir)
    assert findings() == []


def test_a_missing_table_is_left_to_the_not_synced_note(pg_conn, cache_schema, tmp_path):
    models = dbt_codegen.plan_stream_models(stream({"id": {"type": "integer"}}), "s", "r")
    project = _dbt_project(
        tmp_path, cache_schema, dbt_codegen.render_staging_sql("l", "loc", models)
    )
    report = Report()
    with pg_conn.cursor() as cur:
        check_staging_drift(project, read_project(project.dbt_dir), cur, report)
    assert report.findings == []
    assert CacheTable(cache_schema, "things").exists is False


def test_plan_add_reads_the_stored_map(pg, pg_conn, cache_schema, repo_copy, monkeypatch):
    """`connector add` over a table that already has a map (a connector removed without
    --drop-data and added again): the staging model selects the stored columns. The source's
    discover is given, so nothing but PostgreSQL and the files is involved."""
    from dataplatform.lifecycle.add import plan_add
    from dataplatform.lifecycle.refresh_staging import _select_items
    from tests.dataplatform.lifecycle.conftest import CONNECTOR_YAML

    monkeypatch.setenv("CACHE_SCHEMA", cache_schema)
    monkeypatch.setenv("ORDERS_API_URL", "http://127.0.0.1:9")  # never called
    monkeypatch.setenv("ORDERS_API_KEY", "unused")
    with pg_conn.cursor() as cur:
        _create_table(
            cur, cache_schema, "orders", {"orderid": "bigint", "a_b": "varchar", **PLATFORM}
        )
        _store_map(
            cur,
            cache_schema,
            "orders",
            [("orderId", "bigint", "orderid"), ("a-b", "character varying", "a_b")],
        )
    discovered = stream({"orderId": {"type": "integer"}, "a_b": {}, "a-b": {}}, "orders")
    root = repo_copy.root
    project = Project(
        root=root,
        dagster_code=root / "dagster_code",
        connectors_dir=root / "data-manager" / "external-connectors",
        dbt_dir=root / "dbt_models",
        code_locations=root / "data-manager/resources/dagster/code-locations.json",
    )
    plan = plan_add(
        project, "shop_orders", CONNECTOR_YAML, ["orders"], discover=lambda c, s: [discovered]
    )
    models = project.models_dir
    model = plan.txn.staged(models / "staging" / "staging_orders.sql").decode()
    # `a-b` keeps the column the map gave it (under its alias a_b_2: `a_b` has the first claim
    # on the alias); `a_b` would get a_b_2, which the table does not have yet: left out.
    assert _select_items(model) == {
        "order_id": "orderid::bigint",
        "a_b_2": "a_b",
        "extracted_at": "_airbyte_extracted_at",
        "dbt_loaded_at": "current_timestamp",
    }
    assert f"schema: {cache_schema}" in plan.txn.staged(models / "shop_orders_sources.yml").decode()
    assert any(f"{cache_schema}.orders already exists" in n for n in plan.notes), plan.notes
    assert any("has no column yet for a_b" in n for n in plan.notes), plan.notes
