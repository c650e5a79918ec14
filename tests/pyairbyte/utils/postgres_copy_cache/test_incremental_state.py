"""Declarative incremental streams resume from the stored cursor: no re-reads, no duplicates.

Stock PyAirbyte 0.71.3 never hands a manifest source its saved state, so every run reads from
the start date again (and an append stream doubles). The cache enables the state hand-off.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.helpers import rows, scalar
from tests.pyairbyte.utils.postgres_copy_cache.conftest import DATETIME_FORMAT, page_body

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "updatedAt": {"type": "string", "format": "date-time"},
    },
}
N, M, K = 25, 7, 4  # first load, added later, updated later
PAGE_SIZE = 10
PEOPLE = {"primary_key": ["id"], "incremental_cursor": "updatedAt"}


class IncrementalApi:
    """Records with an updatedAt cursor; ?since= filters (inclusive), ?page= paginates."""

    def __init__(self) -> None:
        self.records: dict[int, dict] = {}

    def put(self, record_id: int, name: str, updated_at: datetime) -> None:
        stamp = updated_at.strftime(DATETIME_FORMAT)
        self.records[record_id] = {"id": record_id, "name": name, "updatedAt": stamp}

    def handler(self, path: str, params: dict[str, str]) -> bytes:
        since = params.get("since", "")
        matching = sorted(
            (r for r in self.records.values() if r["updatedAt"] >= since),
            key=lambda r: (r["updatedAt"], r["id"]),
        )
        page = int(params.get("page", "1"))
        start = (page - 1) * PAGE_SIZE
        chunk = [json.dumps(r) for r in matching[start : start + PAGE_SIZE]]
        return page_body(chunk, page + 1 if start + PAGE_SIZE < len(matching) else None)


def test_second_run_reads_only_new_and_updated_records(
    declarative_source, local_api, make_cache, cache_schema, pg_conn
):
    api = IncrementalApi()
    local_api.handler = api.handler
    now = datetime.now(UTC).replace(microsecond=0)
    first_load = now - timedelta(days=2)
    for i in range(1, N + 1):
        api.put(i, f"user {i}", first_load + timedelta(minutes=i))

    cache = make_cache(cache_schema)
    source = declarative_source("people", SCHEMA, **PEOPLE)
    source.read(cache)
    assert scalar(pg_conn, f'SELECT count(*) FROM "{cache_schema}".people') == N
    first_run_requests = len(local_api.requests)
    assert local_api.requests[0][1].get("since") == "2024-01-01T00:00:00Z"

    # Between the runs, the upstream adds M records and updates K.
    later = now - timedelta(hours=1)
    for i in range(N + 1, N + M + 1):
        api.put(i, f"user {i}", later + timedelta(minutes=i))
    updated_ids = [3, 8, 15, 21]
    assert len(updated_ids) == K
    for i in updated_ids:
        api.put(i, f"user {i} renamed", later)

    source = declarative_source("people", SCHEMA, **PEOPLE)
    source.read(cache)

    second_run = local_api.requests[first_run_requests:]
    # The stored cursor went to the API: only records updated since the first run's newest.
    newest_first_run = (first_load + timedelta(minutes=N)).strftime(DATETIME_FORMAT)
    assert second_run[0][1].get("since") == newest_first_run
    assert len(second_run) == 2  # (M + K + 1 boundary record) / PAGE_SIZE pages, not 4

    table = f'"{cache_schema}".people'
    assert scalar(pg_conn, f"SELECT count(*) FROM {table}") == N + M
    assert scalar(pg_conn, f"SELECT count(DISTINCT id) FROM {table}") == N + M
    renamed = rows(pg_conn, f"SELECT id FROM {table} WHERE name LIKE '%% renamed' ORDER BY id")
    assert [r[0] for r in renamed] == updated_ids
    stored_state = scalar(
        pg_conn,
        f'SELECT state_json FROM "{cache_schema}"._airbyte_state '
        "WHERE stream_name = 'people' ORDER BY last_updated DESC LIMIT 1",
    )
    assert newest_first_run not in stored_state  # the cursor moved on


def test_rerun_without_changes_adds_nothing(
    declarative_source, local_api, make_cache, cache_schema, pg_conn
):
    """An append (no primary key) incremental stream: a rerun must not duplicate rows."""
    api = IncrementalApi()
    local_api.handler = api.handler
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    for i in range(1, 13):
        api.put(i, f"user {i}", start + timedelta(minutes=i))
    cache = make_cache(cache_schema)

    for _ in range(2):
        source = declarative_source("events", SCHEMA, incremental_cursor="updatedAt")
        source.read(cache)

    table = f'"{cache_schema}".events'
    # The boundary record (updatedAt == cursor, the API filters inclusively) is the only
    # re-read; without the state hand-off the count would be 24.
    assert scalar(pg_conn, f"SELECT count(*) FROM {table}") <= 13
    assert scalar(pg_conn, f"SELECT count(DISTINCT id) FROM {table}") == 12
