"""Tables the stock PostgresCache created keep working, with a warning and a way out."""

from __future__ import annotations

import json
import logging

from tests.helpers import column_types, scalar
from tests.pyairbyte.utils.postgres_copy_cache.conftest import paged

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "seen_at": {"type": "string", "format": "date-time"},
        "details": {"type": "object"},
    },
}


def _records(label: str, ids: range) -> list[str]:
    return [
        json.dumps({"id": i, "seen_at": "2024-05-01T12:00:00+02:00", "details": {"label": label}})
        for i in ids
    ]


class _WarningsOf(logging.Handler):
    """Collects a logger's warnings (PyAirbyte's logging setup defeats pytest's caplog)."""

    def __init__(self, logger_name: str) -> None:
        super().__init__(logging.WARNING)
        self.logger = logging.getLogger(logger_name)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self):
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc_info) -> None:
        self.logger.removeHandler(self)


def _column_types(pg_conn, schema: str) -> dict[str, str]:
    return column_types(pg_conn, schema, "legacy")


def test_stock_table_is_merged_into_then_replaced_with_exact_types(
    declarative_source, local_api, make_cache, cache_schema, pg_conn
):
    local_api.handler = paged(_records("stock", range(1, 6)), 10)
    declarative_source("legacy", SCHEMA, primary_key=["id"]).read(
        make_cache(cache_schema, stock=True)
    )
    assert _column_types(pg_conn, cache_schema)["seen_at"] == "timestamp without time zone"

    cache = make_cache(cache_schema)
    local_api.handler = paged(_records("copy", range(4, 9)), 10)
    warnings = _WarningsOf("pyairbyte.utils.postgres_copy_cache.processor")
    with warnings:
        declarative_source("legacy", SCHEMA, primary_key=["id"]).read(cache)

    table = f'"{cache_schema}".legacy'
    assert scalar(pg_conn, f"SELECT count(*) FROM {table}") == 8
    assert scalar(pg_conn, f"SELECT details::jsonb ->> 'label' FROM {table} WHERE id = 8") == "copy"
    warning = next(message for message in warnings.messages if "stock PostgresCache" in message)
    assert "seen_at is timestamp without time zone (not TIMESTAMP WITH TIME ZONE)" in warning
    assert "details is json (not JSONB)" in warning
    assert "write_strategy='replace'" in warning

    declarative_source("legacy", SCHEMA, primary_key=["id"]).read(cache, write_strategy="replace")
    types = _column_types(pg_conn, cache_schema)
    assert (types["seen_at"], types["details"]) == ("timestamp with time zone", "jsonb")
    assert scalar(pg_conn, f"SELECT bool_and(seen_at = '2024-05-01T10:00:00Z') FROM {table}")
