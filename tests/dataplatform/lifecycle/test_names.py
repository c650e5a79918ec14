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
        ("", ""),
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
