"""Names the lifecycle gives things: code locations, cache tables and columns, SQL identifiers,
assets and jobs. Pure functions: no services."""

from __future__ import annotations

import pytest

from dataplatform.lifecycle import names
from dataplatform.lifecycle.errors import LifecycleError
from dataplatform.lifecycle.names import cache_name, check_location_name, quote_ident, snake_case

AWKWARD_NAMES = [
    "discountPercentage",
    "availabilityStatus",
    "unit-price",
    "Average Sales (%)",
    "1stPlace",
    "order",
    "group",
    "HTTPStatus",
    "it's",
]


@pytest.mark.slow  # importing airbyte alone takes 8-30 s
def test_cache_name_is_pyairbytes_normaliser():
    from airbyte._util.name_normalizers import LowerCaseNormalizer

    for name in AWKWARD_NAMES:
        assert cache_name(name) == LowerCaseNormalizer.normalize(name), name


@pytest.mark.parametrize(
    ("name", "cached"),
    [
        ("discountPercentage", "discountpercentage"),
        ("unit-price", "unit_price"),
        ("Average Sales (%)", "average_sales____"),
        ("1stPlace", "_1stplace"),
        ("", "_"),  # column_names.normalize: a column needs a name
        ("x" * 70, "x" * 63),  # cut to PostgreSQL's 63 bytes, as PostgreSQL would
    ],
)
def test_cache_name_lowercases_and_replaces_non_alphanumerics(name, cached):
    assert cache_name(name) == cached


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("discountPercentage", "discount_percentage"),
        ("HTTPStatus", "http_status"),
        ("unit-price", "unit_price"),
        ("shippedAt", "shipped_at"),
        ("already_snake", "already_snake"),
        ("1stPlace", "_1st_place"),
        ("  spaced  out ", "spaced_out"),
        ("---", ""),
    ],
)
def test_snake_case(name, snake):
    assert snake_case(name) == snake


def test_quote_ident_only_when_needed():
    assert quote_ident("discountpercentage") == "discountpercentage"
    assert quote_ident("order") == '"order"'
    assert quote_ident("_1stplace") == "_1stplace"
    assert quote_ident('we"ird') == '"we""ird"'
    assert quote_ident("Mixed") == '"Mixed"'  # unquoted, PostgreSQL would fold it to `mixed`


def test_sql_literal_doubles_single_quotes():
    assert names.sql_literal("it's") == "'it''s'"
    assert names.sql_literal("") == "''"


@pytest.mark.parametrize("good", ["shop", "shop_orders", "s3", "a_b_c"])
def test_valid_location_names_come_back_unchanged(good):
    assert check_location_name(good) == good


@pytest.mark.parametrize("bad", ["Shop", "shop-orders", "1shop", "class", "lib", ""])
def test_location_names_must_be_python_and_dbt_safe(bad):
    with pytest.raises(LifecycleError):
        check_location_name(bad)


def test_an_invalid_location_name_suggests_a_valid_one():
    with pytest.raises(LifecycleError) as info:
        check_location_name("ShopOrders")
    assert "must be lowercase letters, digits and '_'" in str(info.value)
    assert "shop_orders" in info.value.fix


def test_reserved_package_names_are_refused_with_the_reason():
    for reserved in sorted(names.RESERVED_LOCATION_NAMES):
        with pytest.raises(LifecycleError, match="reserved"):
            check_location_name(reserved)


def test_asset_and_job_names_follow_the_location():
    assert names.sync_asset_name("shop") == "sync_shop"
    assert names.transform_asset_name("shop") == "transform_shop_data"
    assert names.job_name("shop") == "shop_pipeline"
    assert names.job_variable("shop") == "shop_pipeline_job"


@pytest.mark.parametrize("word", ["class", "def", "import", "lambda", "from"])
def test_a_python_keyword_is_named_as_one_and_the_fix_is_not_the_keyword(word):
    with pytest.raises(LifecycleError) as info:
        check_location_name(word)
    assert "is a Python keyword" in info.value.problem
    suggestion = info.value.fix.split("`")[1]
    assert suggestion != word
    assert check_location_name(suggestion) == suggestion


@pytest.mark.parametrize(
    "bad", ["../x", "a;drop", "a/b", "Shop", "1shop", "lib", "x" * 200, "_x", "a b"]
)
def test_every_suggested_fix_is_itself_a_valid_name(bad):
    with pytest.raises(LifecycleError) as info:
        check_location_name(bad)
    if "`" in info.value.fix:
        suggestion = info.value.fix.split("`")[1]
        assert check_location_name(suggestion) == suggestion


def test_the_longest_name_leaves_room_for_a_prefixed_relation():
    longest = "x" * names.MAX_LOCATION_NAME
    assert check_location_name(longest) == longest
    assert len(f"{longest}_s_reporting") <= names.PG_MAX_IDENTIFIER
    assert len(f"staging_{longest}_s") <= names.PG_MAX_IDENTIFIER


@pytest.mark.parametrize("length", [names.MAX_LOCATION_NAME + 1, 200])
def test_a_name_too_long_for_its_relations_names_the_limit(length):
    with pytest.raises(LifecycleError) as info:
        check_location_name("x" * length)
    assert f"is {length} characters" in info.value.problem
    assert "63-character limit" in info.value.problem
    assert f"at most {names.MAX_LOCATION_NAME} characters" in info.value.fix
    assert "x" * 100 not in str(info.value)  # the name is shortened, not printed whole


def test_check_relation_name_refuses_more_than_63_bytes_and_names_the_relation():
    names.check_relation_name("r" * 63, "dbt staging model", "fix")
    with pytest.raises(LifecycleError) as info:
        names.check_relation_name("staging_" + "r" * 56, "dbt staging model", "the fix")
    assert "dbt staging model 'staging_rrr" in info.value.problem
    assert "would be 64 characters" in info.value.problem
    assert "63-character limit" in info.value.problem
    assert info.value.fix == "the fix"
