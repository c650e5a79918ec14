"""What `connector add` generates for dbt, from a discovered stream schema: pure functions, no
database (the generated SQL is run against PostgreSQL in test_codegen_and_transaction.py)."""

from __future__ import annotations

import pytest
import yaml

from dataplatform.lifecycle import dbt_codegen
from dataplatform.lifecycle.discovery import DiscoveredStream


def stream(properties: dict, name: str = "orders", primary_key=None) -> DiscoveredStream:
    return DiscoveredStream(name, {"type": "object", "properties": properties}, primary_key or [])


@pytest.mark.parametrize(
    ("prop", "kind"),
    [
        ({"type": "integer"}, "integer"),
        ({"type": ["null", "number"]}, "number"),
        ({"type": "string", "format": "date-time"}, "timestamptz"),
        ({"type": "string", "format": "date"}, "date"),
        ({"type": "string", "format": "time"}, "time"),
        ({"type": "string"}, "string"),
        ({"type": "string", "airbyte_type": "timestamp_without_timezone"}, "timestamp"),
        ({"type": "string", "airbyte_type": "timestamp_with_timezone"}, "timestamptz"),
        ({"type": "object"}, "object"),
        ({"type": ["null", "array"]}, "array"),
        ({"type": ["string", "integer"]}, "unknown"),  # a union has no single column type
        ({}, "unknown"),
        ("not a schema", "unknown"),
    ],
)
def test_schema_kind_follows_how_pyairbyte_types_the_column(prop, kind):
    assert dbt_codegen.schema_kind(prop) == kind


def test_staging_columns_cast_alias_and_keep_the_original_name_as_a_comment():
    columns = dbt_codegen.staging_columns(
        stream(
            {
                "orderId": {"type": "integer"},
                "placedAt": {"type": "string", "format": "date-time"},
                "note": {"type": "string"},
                "localTime": {"type": "string", "airbyte_type": "timestamp_without_timezone"},
            }
        )
    )
    by_alias = {c.alias: c for c in columns}
    assert by_alias["order_id"].expression == "orderid::bigint"
    assert by_alias["order_id"].comment == "orderId"
    assert by_alias["placed_at"].expression == "placedat::timestamptz"
    assert by_alias["note"].expression == "note" and by_alias["note"].comment == ""
    # Wall-clock time, never ::timestamp (which would shift by the session's time zone); the
    # column is quoted because `localtime` is a reserved word.
    assert by_alias["local_time"].expression == """("localtime")::timestamptz at time zone 'UTC'"""
    assert [c.alias for c in columns][-2:] == ["extracted_at", "dbt_loaded_at"]


def test_nested_object_keys_are_read_with_jsonb_operators_in_their_original_case():
    columns = dbt_codegen.staging_columns(
        stream(
            {
                "shipTo": {
                    "type": "object",
                    "properties": {
                        "zipCode": {"type": "string"},
                        "floor": {"type": "integer"},
                        "geo": {"type": "object"},
                    },
                }
            }
        )
    )
    by_alias = {c.alias: c.expression for c in columns}
    assert by_alias["ship_to"] == "shipto::jsonb"
    assert by_alias["ship_to_zip_code"] == "(shipto::jsonb ->> 'zipCode')"
    assert by_alias["ship_to_floor"] == "(shipto::jsonb ->> 'floor')::bigint"
    assert by_alias["ship_to_geo"] == "(shipto::jsonb -> 'geo')"


def test_aliases_that_would_collide_get_a_number():
    columns = dbt_codegen.staging_columns(
        stream({"meta": {"type": "string"}, "Meta": {"type": "string"}, "extracted_at": {}})
    )
    aliases = [c.alias for c in columns]
    assert aliases == ["meta", "meta_2", "extracted_at", "extracted_at_2", "dbt_loaded_at"]


def test_reserved_words_are_quoted_in_the_select_list():
    models = dbt_codegen.plan_stream_models(
        stream({"order": {"type": "integer"}}), "staging_orders", "orders_reporting"
    )
    sql = dbt_codegen.render_staging_sql("shop", "shop", models)
    assert '"order"::bigint' in sql and 'as "order"' in sql
    assert "select * from {{ source('shop', 'orders') }}" in sql


def test_a_json_key_that_looks_like_jinja_is_kept_raw():
    models = dbt_codegen.plan_stream_models(
        stream({"attrs": {"type": "object", "properties": {"{{ x }}": {"type": "string"}}}}),
        "staging_orders",
        "orders_reporting",
    )
    sql = dbt_codegen.render_staging_sql("shop", "shop", models)
    assert "{% raw %}" in sql and "{% endraw %}" in sql
    assert "->> '{{ x }}'" in sql


def test_cache_table_names_are_the_stream_as_the_cache_normalises_it():
    assert dbt_codegen.cache_table_name("Line Items") == "line_items"
    with pytest.raises(ValueError, match="longer than PostgreSQL's 63 bytes"):
        dbt_codegen.plan_stream_models(stream({}, name="x" * 64), "s", "r")


def test_reporting_model_selects_the_staging_columns_except_the_load_time():
    models = dbt_codegen.plan_stream_models(
        stream({"orderId": {"type": "integer"}}), "staging_orders", "orders_reporting"
    )
    sql = dbt_codegen.render_reporting_sql("shop", models)
    assert "from {{ ref('staging_orders') }}" in sql
    assert "order_id" in sql and "extracted_at" in sql and "dbt_loaded_at" not in sql


@pytest.mark.parametrize(
    ("primary_key", "tests", "note"),
    [
        ([["id"]], [["not_null", "unique"]], None),
        ([], None, "# No key tests: the source declares no primary key."),
        ([["a", "b"]], None, "# No key tests: the primary key points into nested fields"),
    ],
)
def test_sources_yaml_tests_the_primary_key_when_it_can(primary_key, tests, note):
    models = dbt_codegen.plan_stream_models(
        stream({"id": {"type": "integer"}}, primary_key=primary_key), "s", "r"
    )
    text = dbt_codegen.render_sources_yaml(
        "shop", "source-shop", "shop", "pyairbyte_cache", "sync_shop", [models]
    )
    (table,) = yaml.safe_load(text)["sources"][0]["tables"]
    # The cache table's own asset key, as the sync multi-asset declares it.
    assert table["meta"] == {"dagster": {"asset_key": ["pyairbyte_cache", models.table]}}
    if tests is None:
        assert "columns" not in table and note in text
    else:
        assert [c["data_tests"] for c in table["columns"]] == tests


def test_sql_comment_and_jinja_string_keep_names_as_data():
    assert dbt_codegen.sql_comment("two\nlines {{ x }}") == "two lines {  x }}"
    assert dbt_codegen.jinja_string("it's \\ here") == "'it\\'s \\\\ here'"
