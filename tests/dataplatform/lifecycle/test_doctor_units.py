"""The doctor's pure parts: dbt's manifest read into the doctor's view of the project, the
case check of column names, the SQL rendered for EXPLAIN, and the report. The whole command
against a copy of the repository is in test_check.py."""

from __future__ import annotations

from pathlib import Path

from dataplatform.dbt.manifest import DbtManifestError
from dataplatform.lifecycle.dbt_files import read_project
from dataplatform.lifecycle.doctor.cache_columns import case_mismatches, render_for_explain
from dataplatform.lifecycle.doctor.dbt import _parse_error, project_from_manifest
from dataplatform.lifecycle.doctor.report import ERROR, NOTE, WARNING, Report

SOURCES_YML = """\
version: 2
sources:
  - name: shop
    schema: pyairbyte_cache
    tables:
      - name: orders
        identifier: shop_orders
        meta: {dagster: {asset_key: [sync_shop]}}
  - name: loose
    tables:
      - name: things
"""
STAGING_SQL = "select orderId from {{ source('shop', 'orders') }}"
REPORT_SQL = "{{ config(schema='reporting') }}\nselect * from {{ ref('staging_orders') }}"


def source_node(source: str, table: str, schema: str, identifier: str, meta=None) -> dict:
    return {
        "package_name": "shop_dbt",
        "source_name": source,
        "name": table,
        "identifier": identifier,
        "schema": schema,
        "unrendered_schema": "stale: dbt keeps this across partial parses",
        "original_file_path": "models/sources.yml",
        "meta": meta or {},
    }


def model_node(name: str, path: str, sql: str, schema: str, sources=(), refs=()) -> dict:
    return {
        "resource_type": "model",
        "package_name": "shop_dbt",
        "name": name,
        "alias": name,
        "schema": schema,
        "original_file_path": path,
        "raw_code": sql,
        "sources": [list(s) for s in sources],
        "refs": [{"name": r, "package": None, "version": None} for r in refs],
    }


def manifest() -> dict:
    return {
        "metadata": {"project_name": "shop_dbt"},
        "sources": {
            "source.shop_dbt.shop.orders": source_node(
                "shop",
                "orders",
                "pyairbyte_cache",
                "shop_orders",
                {"dagster": {"asset_key": ["sync_shop"]}},
            ),
            "source.shop_dbt.loose.things": source_node("loose", "things", "loose", "things"),
            "source.other_pkg.x.y": {**source_node("x", "y", "x", "y"), "package_name": "other"},
        },
        "nodes": {
            "model.shop_dbt.staging_orders": model_node(
                "staging_orders",
                "models/staging/staging_orders.sql",
                STAGING_SQL,
                "staging",
                sources=[("shop", "orders")],
            ),
            "model.shop_dbt.orders_report": model_node(
                "orders_report",
                "models/orders_report.sql",
                REPORT_SQL,
                "reporting",
                refs=["staging_orders"],
            ),
            "test.shop_dbt.not_null": {"resource_type": "test", "package_name": "shop_dbt"},
        },
    }


def write_project(root: Path) -> Path:
    (root / "models" / "staging").mkdir(parents=True)
    (root / "models" / "sources.yml").write_text(SOURCES_YML)
    (root / "models" / "staging" / "staging_orders.sql").write_text(STAGING_SQL)
    (root / "models" / "orders_report.sql").write_text(REPORT_SQL)
    return root


def test_the_manifest_gives_the_projects_own_sources_and_models(tmp_path):
    dbt = project_from_manifest(manifest(), write_project(tmp_path))
    assert sorted(dbt.sources) == ["loose", "shop"]  # another package's source is left out
    orders = dbt.table("shop", "orders")
    assert (orders.schema, orders.identifier) == ("pyairbyte_cache", "shop_orders")
    assert sorted(dbt.models) == ["orders_report", "staging_orders"]
    staging = dbt.models["staging_orders"]
    assert staging.path == tmp_path / "models/staging/staging_orders.sql"
    assert staging.sources == {("shop", "orders")} and staging.sql == STAGING_SQL
    assert dbt.models["orders_report"].refs == {"staging_orders"}
    assert dbt.models["orders_report"].schema == "reporting"


def test_whether_a_source_declares_its_schema_comes_from_its_yaml(tmp_path):
    dbt = project_from_manifest(manifest(), write_project(tmp_path))
    assert dbt.sources["shop"].declared_schema == "pyairbyte_cache"
    assert dbt.sources["loose"].declared_schema is None  # dbt defaults it to the source name
    assert dbt.table("loose", "things").schema == "loose"


def test_the_manifest_and_the_static_reading_agree_on_a_simple_project(tmp_path):
    root = write_project(tmp_path)
    from_dbt, static = project_from_manifest(manifest(), root), read_project(root)
    for name, model in static.models.items():
        assert (model.sources, model.refs) == (
            from_dbt.models[name].sources,
            from_dbt.models[name].refs,
        )
    assert {n: s.declared_schema for n, s in static.sources.items()} == {
        n: s.declared_schema for n, s in from_dbt.sources.items()
    }


def test_case_mismatches_find_camel_case_columns_but_not_aliases_strings_or_jinja():
    sql = (
        "-- discountPercentage in a comment\n"
        "select discountPercentage::numeric as discountPercentage,\n"
        "  \"Title\", title as niceTitle, 'discountPercentage' as s\n"
        "from {{ source('shop', 'discountPercentage') }}"
    )
    columns = {"discountpercentage", "title", "id"}
    assert sorted(case_mismatches(sql, columns)) == [
        (2, "discountPercentage", "discountpercentage"),
        (3, '"Title"', "title"),
    ]


def test_sql_for_explain_resolves_source_ref_and_config(tmp_path):
    dbt = project_from_manifest(manifest(), write_project(tmp_path))
    staging = render_for_explain(dbt.models["staging_orders"], dbt, lambda schema, name: True)
    assert staging == 'select orderId from "pyairbyte_cache"."shop_orders"'
    report = render_for_explain(dbt.models["orders_report"], dbt, lambda schema, name: True)
    assert report.strip() == 'select * from "staging"."staging_orders"'
    # A ref to a model that was never built, or Jinja beyond config/source/ref, needs real dbt.
    assert render_for_explain(dbt.models["orders_report"], dbt, lambda s, n: False) is None
    dbt.models["staging_orders"].sql += "{% if true %}{% endif %}"
    assert render_for_explain(dbt.models["staging_orders"], dbt, lambda s, n: True) is None


def test_dbt_parse_errors_are_shown_without_colours_or_timestamps():
    exc = DbtManifestError(
        "`dbt parse` failed in /x (exit 2):\n"
        "\x1b[0m09:52:33  Encountered an error:\n"
        "Compilation Error\n  Model 'model.a.b' depends on a node named 'c' which was not found\n"
    )
    assert _parse_error(exc) == (
        "Compilation Error Model 'model.a.b' depends on a node named 'c' which was not found"
    )


def test_report_counts_errors_and_warnings_and_notes_do_not_fail_it():
    report = Report()
    report.add(NOTE, "database", "not reachable")
    report.add(WARNING, "imports", "imports airbyte", "import it lazily")
    assert report.ok and report.summary() == "check: 0 error(s), 1 warning(s)"
    report.add(ERROR, "dbt", "source declares no schema", "add `schema:`")
    assert not report.ok and report.summary() == "check: 1 error(s), 1 warning(s)"
    assert report.findings[-1].render() == (
        "ERROR   [dbt] source declares no schema\n        fix: add `schema:`"
    )


def test_asset_tables_finds_a_key_or_a_table_two_locations_materialize():
    from dataplatform.lifecycle.doctor.asset_tables import check_asset_tables

    results = {
        "dagster_code.a": {
            "ok": True,
            "asset_tables": [
                ["pyairbyte_cache/orders", "pyairbyte_cache.orders"],
                ["staging_orders", "db.staging.staging_orders"],
            ],
        },
        "dagster_code.b": {
            "ok": True,
            "asset_tables": [
                ["pyairbyte_cache/orders", "pyairbyte_cache.orders"],
                ["b/staging_orders", '"db"."staging"."STAGING_ORDERS"'],
                ["unrelated", None],
            ],
        },
        "dagster_code.broken": {"ok": False, "error": "reported by the packages checks"},
    }
    report = Report()
    check_asset_tables(results, {"dagster_code.a": "a", "dagster_code.b": "b"}, report)
    messages = [f.message for f in report.findings]
    assert messages == [
        "asset pyairbyte_cache/orders is defined by 2 code locations: a, b",
        "table staging.staging_orders is materialized by 2 assets: b/staging_orders (b), "
        "staging_orders (a)",
    ]
    assert not report.ok
