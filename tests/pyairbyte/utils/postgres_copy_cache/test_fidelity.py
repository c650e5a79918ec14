"""Every value a source serves comes back from PostgreSQL equal -- and the stock cache fails this.

The corpus is served as exact JSON text by a local API and read by a declarative source. Numbers
are compared as decimals of the served text, date-times as instants, objects and arrays as
parsed JSON (numbers as decimals), everything else with ==.

Limit outside the cache: the CDK and PyAirbyte parse JSON numbers into Python floats before any
cache sees them, so decimals beyond a double's ~16 significant digits cannot survive any cache;
the corpus uses decimals that a double holds exactly in shortest form (e.g. 0.1234567891).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import psycopg2.extras

from tests.helpers import column_types
from tests.pyairbyte.utils.postgres_copy_cache.conftest import paged

LONG_NAME = "a_property_name_that_is_longer_than_the_sixty_three_characters_postgres_allows"

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "zip": {"type": ["null", "string"]},
        "price_text": {"type": ["null", "string"]},
        "sci_text": {"type": ["null", "string"]},
        "special_text": {"type": ["null", "string"]},
        "text": {"type": ["null", "string"]},
        "big_int": {"type": ["null", "integer"]},
        "amount": {"type": ["null", "number"]},
        "flag": {"type": ["null", "boolean"]},
        "happened_at": {"type": ["null", "string"], "format": "date-time"},
        "details": {"type": ["null", "object"]},
        "tags": {"type": ["null", "array"]},
        "Display Name": {"type": ["null", "string"]},
        LONG_NAME: {"type": ["null", "string"]},
    },
}

# Exact JSON text per record. Numeric-looking strings sit in their own columns, as zip codes and
# prices do in real data: that is where pandas' type inference rewrites them.
CORPUS = [
    r"""{"id": 1, "zip": "000001", "price_text": "1.90", "sci_text": "1e5",
        "special_text": "NaN", "text": "", "big_int": 9007199254740993,
        "amount": 0.1234567891, "flag": true, "happened_at": "2024-03-01T12:00:00+02:00",
        "details": {"a": 1, "s": "1.90", "nested": {"list": [1, "000001", 2.5, null]}},
        "tags": ["x", 1, {"k": "v"}], "Display Name": "Ann", "LONG": "long 1"}""",
    r"""{"id": 2, "zip": "01234", "price_text": "10.00", "sci_text": "2E-3",
        "special_text": "Infinity",
        "text": "escaped: h\u00e9llo \u4e2d\u6587 \ud83c\udf89\ud83d\ude00; raw: 中文 🎉👩‍👩‍👧",
        "big_int": -9223372036854775808, "amount": 1.000000001, "flag": false,
        "happened_at": "2024-03-01T10:00:00Z", "details": {}, "tags": [],
        "Display Name": "", "LONG": ""}""",
    r"""{"id": 3, "zip": "99999", "price_text": "0.50", "sci_text": "1e-7",
        "special_text": "nan", "text": "tab\there, newline\nhere, cr\rhere, back\\slash, \\N, \\.",
        "big_int": 0, "amount": 12345.12345678901, "flag": null,
        "happened_at": "2024-03-01T10:00:00.123456Z", "details": null, "tags": null,
        "Display Name": null, "LONG": null}""",
    r"""{"id": 4, "zip": "00000", "price_text": "2.50", "sci_text": "3e10",
        "special_text": "null", "text": "quotes: \"double\" 'single' `back`; comma, pipe| semi;",
        "big_int": 7.0,
        "amount": -0.000000000123, "happened_at": "1999-12-31T23:59:59-05:00"}""",
    r"""{"id": 5, "zip": "12345", "price_text": "3.14", "sci_text": "5E+2",
        "special_text": "true", "text": " leading and trailing spaces ",
        "big_int": 42, "amount": 1e5, "flag": true, "happened_at": null,
        "details": {"deep": {"deeper": {"deepest": ["0001", 0.1234567891]}}},
        "tags": [[1, 2], ["a"]], "Display Name": "\u2028line separator", "LONG": "long 5"}""",
]
CORPUS = [text.replace('"LONG"', f'"{LONG_NAME}"') for text in CORPUS]

# property -> column: PyAirbyte's normalisation (lowercase, non-alphanumerics to _, 63 chars).
COLUMNS = {name: name for name in SCHEMA["properties"]}
COLUMNS["Display Name"] = "display_name"
COLUMNS[LONG_NAME] = LONG_NAME[:63]

EXPECTED_TYPES = {
    "id": "bigint",
    "zip": "character varying",
    "big_int": "bigint",
    "amount": "numeric",
    "flag": "boolean",
    "happened_at": "timestamp with time zone",
    "details": "jsonb",
    "tags": "jsonb",
    "_airbyte_raw_id": "character varying",
    "_airbyte_extracted_at": "timestamp with time zone",
    "_airbyte_meta": "jsonb",
}


def _exact_json(text: str):
    return json.loads(text, parse_float=Decimal)


def _expected_value(schema: dict, prop: str, served):
    if served is None:
        return None
    if schema["properties"][prop].get("format") == "date-time":
        return datetime.fromisoformat(served)
    return served


def _read_table(pg_conn, schema_name: str, schema: dict) -> dict[int, dict]:
    props = list(schema["properties"])
    columns = ", ".join(f'"{COLUMNS[prop]}"' for prop in props)
    with pg_conn.cursor() as cur:
        # Read jsonb numbers as decimals too, so nested values compare exactly.
        psycopg2.extras.register_default_jsonb(cur, loads=_exact_json)
        cur.execute(f'SELECT {columns} FROM "{schema_name}".corpus')
        return {row[0]: dict(zip(props, row, strict=True)) for row in cur.fetchall()}


def _is_number(value) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _same(expected, actual) -> bool:
    if isinstance(expected, datetime):
        # The same instant, and still aware (a naive value lost its offset).
        return isinstance(actual, datetime) and actual.tzinfo is not None and actual == expected
    if _is_number(expected) and _is_number(actual):
        return expected == actual  # 7.0 served into an integer column is stored as 7
    return type(expected) is type(actual) and expected == actual


def _mismatches(pg_conn, schema_name: str, schema: dict = SCHEMA) -> dict[str, list[str]]:
    """field -> descriptions of every value that did not come back equal."""
    stored = _read_table(pg_conn, schema_name, schema)
    problems: dict[str, list[str]] = {}
    for text in CORPUS:
        served = _exact_json(text)
        row = stored.get(served["id"])
        for prop in schema["properties"]:
            expected = _expected_value(schema, prop, served.get(prop))
            actual = None if row is None else row[prop]
            if not _same(expected, actual):
                problems.setdefault(prop, []).append(
                    f"id {served['id']}: served {expected!r}, stored {actual!r}"
                )
    return problems


def _sync(declarative_source, local_api, cache, schema: dict = SCHEMA) -> None:
    local_api.handler = paged(CORPUS, page_size=2)  # three pages
    source = declarative_source("corpus", schema, primary_key=["id"])
    source.read(cache)


def test_every_served_value_comes_back_equal(
    declarative_source, local_api, make_cache, cache_schema, pg_conn
):
    _sync(declarative_source, local_api, make_cache(cache_schema))

    assert _mismatches(pg_conn, cache_schema) == {}
    types = column_types(pg_conn, cache_schema, "corpus")
    assert {column: types.get(column) for column in EXPECTED_TYPES} == EXPECTED_TYPES
    # PyAirbyte's layout: normalised column names plus the three _airbyte_* columns.
    assert set(types) == set(COLUMNS.values()) | {
        "_airbyte_raw_id",
        "_airbyte_extracted_at",
        "_airbyte_meta",
    }


def test_stock_postgres_cache_does_not_keep_the_corpus(
    declarative_source, local_api, make_cache, cache_schema, pg_conn
):
    """The same corpus through PyAirbyte's own PostgresCache: values change (what we protect)."""
    _sync(declarative_source, local_api, make_cache(cache_schema, stock=True))

    problems = _mismatches(pg_conn, cache_schema)
    # pandas type inference: "000001" -> "1", "1.90" -> "1.9", and an integer column holding
    # 7.0 becomes float64, so 2**53 + 1 -> 2**53; date-times lose their offset (timestamp
    # without time zone); 0.1234567891 -> 0.123456789 (numeric(38,9)).
    assert {"zip", "price_text", "big_int", "happened_at", "amount"} <= set(problems), problems
    assert "id 1: served '000001', stored '1'" in problems["zip"]
    assert "id 1: served 9007199254740993, stored 9007199254740992" in problems["big_int"]
