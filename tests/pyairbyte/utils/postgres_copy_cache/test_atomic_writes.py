"""A failed sync leaves the previous table exactly as it was, for every write strategy.

Two kinds of failure: the source dies mid-stream (the API drops the connection after some
pages), and PostgreSQL rejects a staged value halfway through the load.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.helpers import rows, scalar
from tests.pyairbyte.utils.postgres_copy_cache.conftest import paged

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "seen_at": {"type": ["null", "string"], "format": "date-time"},
    },
}
PAGE_SIZE = 5


def _records(count: int, label: str, *, bad_id: int | None = None) -> list[str]:
    return [
        json.dumps(
            {
                "id": i,
                "name": f"{label} {i}",
                "seen_at": "not a date" if i == bad_id else f"2024-05-01T10:{i % 60:02d}:00Z",
            }
        )
        for i in range(1, count + 1)
    ]


def _snapshot(pg_conn, schema: str) -> list[tuple]:
    return rows(pg_conn, f'SELECT * FROM "{schema}".items ORDER BY id, _airbyte_raw_id')


def _state(pg_conn, schema: str):
    return rows(pg_conn, f'SELECT * FROM "{schema}"._airbyte_state ORDER BY 1')


@pytest.fixture
def loaded_cache(declarative_source, local_api, make_cache, cache_schema, pg_conn):
    """A cache whose `items` table holds one successful sync of 12 records."""
    cache = make_cache(cache_schema)
    local_api.handler = paged(_records(12, "first"), PAGE_SIZE)
    declarative_source("items", SCHEMA, primary_key=["id"]).read(cache, write_strategy="replace")
    assert scalar(pg_conn, f'SELECT count(*) FROM "{cache_schema}".items') == 12
    return cache


@pytest.mark.parametrize("strategy", ["replace", "append", "merge"])
def test_source_dropping_the_connection_mid_stream_changes_nothing(
    strategy, loaded_cache, declarative_source, local_api, cache_schema, pg_conn
):
    before, state_before = _snapshot(pg_conn, cache_schema), _state(pg_conn, cache_schema)
    # New content, but the API drops the connection when page 3 is requested (after 10 records).
    local_api.handler = paged(_records(20, "second"), PAGE_SIZE, fail_on_page=3)

    source = declarative_source("items", SCHEMA, primary_key=["id"])
    with pytest.raises(Exception, match="Remote end closed connection without response"):
        source.read(loaded_cache, write_strategy=strategy)

    assert [params.get("page") for _, params in local_api.requests[-3:]] == [None, "2", "3"]
    assert _snapshot(pg_conn, cache_schema) == before
    assert _state(pg_conn, cache_schema) == state_before


@pytest.mark.parametrize("strategy", ["replace", "append", "merge"])
def test_value_postgres_rejects_fails_clearly_and_changes_nothing(
    strategy, loaded_cache, declarative_source, local_api, cache_schema, pg_conn
):
    from pyairbyte.utils.postgres_copy_cache import CacheLoadError

    before = _snapshot(pg_conn, cache_schema)
    local_api.handler = paged(_records(20, "second", bad_id=17), PAGE_SIZE)

    source = declarative_source("items", SCHEMA, primary_key=["id"])
    with pytest.raises(CacheLoadError) as raised:
        source.read(loaded_cache, write_strategy=strategy)

    message = str(raised.value)
    assert "stream 'items'" in message
    assert "field 'seen_at' (column \"seen_at\", TIMESTAMP WITH TIME ZONE)" in message
    assert '"not a date"' in message
    assert "table is unchanged" in message
    assert _snapshot(pg_conn, cache_schema) == before
    leftovers = scalar(
        pg_conn,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
        "AND table_name LIKE 'items\\_%%'",
        (cache_schema,),
    )
    assert leftovers == 0  # no loading table left behind


def test_replace_keeps_views_and_indexes_on_the_table(
    loaded_cache, declarative_source, local_api, cache_schema, pg_conn
):
    """dbt staging models are views on cache tables: a replace must not break or block them,
    nor drop an index someone added."""
    table = f'"{cache_schema}".items'
    with pg_conn.cursor() as cur:
        cur.execute(f'CREATE VIEW "{cache_schema}".stg_items AS SELECT id, name FROM {table}')
        cur.execute(f"CREATE INDEX items_name_idx ON {table} (name)")
    local_api.handler = paged(_records(7, "second"), PAGE_SIZE)

    declarative_source("items", SCHEMA, primary_key=["id"]).read(
        loaded_cache, write_strategy="replace"
    )

    names = rows(pg_conn, f'SELECT name FROM "{cache_schema}".stg_items ORDER BY id')
    assert [n for (n,) in names] == [f"second {i}" for i in range(1, 8)]
    index = f"{cache_schema}.items_name_idx"
    assert scalar(pg_conn, "SELECT to_regclass(%s) IS NOT NULL", (index,))


def test_merge_updates_matching_keys_and_keeps_the_last_duplicate(
    loaded_cache, declarative_source, local_api, cache_schema, pg_conn
):
    records = _records(3, "second") + [json.dumps({"id": 2, "name": "second 2 again"})]
    records += [json.dumps({"id": 40, "name": "new"})]
    local_api.handler = paged(records, PAGE_SIZE)

    declarative_source("items", SCHEMA, primary_key=["id"]).read(
        loaded_cache, write_strategy="merge"
    )

    table = f'"{cache_schema}".items'
    assert scalar(pg_conn, f"SELECT count(*) FROM {table}") == 13
    names = dict(rows(pg_conn, f"SELECT id, name FROM {table} WHERE id IN (1, 2, 3, 4, 40)"))
    assert names == {1: "second 1", 2: "second 2 again", 3: "second 3", 4: "first 4", 40: "new"}
    assert scalar(pg_conn, f"SELECT seen_at FROM {table} WHERE id = 2") is None


@pytest.mark.parametrize("strategy", ["append", "merge"])
def test_a_new_field_becomes_a_new_column(
    strategy, loaded_cache, declarative_source, local_api, cache_schema, pg_conn
):
    schema = {
        "type": "object",
        "properties": {**SCHEMA["properties"], "Score Value": {"type": "number"}},
    }
    local_api.handler = paged([json.dumps({"id": 50, "name": "scored", "Score Value": 0.5})], 5)

    declarative_source("items", schema, primary_key=["id"]).read(
        loaded_cache, write_strategy=strategy
    )

    table = f'"{cache_schema}".items'
    assert scalar(pg_conn, f"SELECT score_value FROM {table} WHERE id = 50") == Decimal("0.5")
    assert scalar(pg_conn, f"SELECT count(*) FROM {table} WHERE score_value IS NULL") == 12


def test_a_string_postgres_cannot_store_is_named(
    loaded_cache, declarative_source, local_api, cache_schema, pg_conn
):
    """PostgreSQL text cannot hold U+0000: the error names the field instead of a bare SQL error."""
    from pyairbyte.utils.postgres_copy_cache import CacheLoadError

    before = _snapshot(pg_conn, cache_schema)
    local_api.handler = paged(['{"id": 1, "name": "nul \\u0000 inside"}'], PAGE_SIZE)

    with pytest.raises(CacheLoadError, match=r"field 'name' \(column \"name\", VARCHAR\)"):
        declarative_source("items", SCHEMA, primary_key=["id"]).read(loaded_cache)
    assert _snapshot(pg_conn, cache_schema) == before


def test_a_fraction_in_an_integer_field_fails_instead_of_rounding(
    loaded_cache, declarative_source, local_api, cache_schema, pg_conn
):
    from pyairbyte.utils.postgres_copy_cache import CacheLoadError

    before = _snapshot(pg_conn, cache_schema)
    local_api.handler = paged(['{"id": 1.5, "name": "half"}'], PAGE_SIZE)

    with pytest.raises(CacheLoadError, match=r"field 'id' .*BIGINT.*\"1.5\""):
        declarative_source("items", SCHEMA, primary_key=["id"]).read(loaded_cache)
    assert _snapshot(pg_conn, cache_schema) == before
