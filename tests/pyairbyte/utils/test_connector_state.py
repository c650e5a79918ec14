"""`connector_state` and `dataplatform connector state show|reset` on incremental declarative
streams: real PostgreSQL, a local API, and connector YAMLs synced through `sync_connector`.

Two connectors share one cache schema, as in the default cache (no table prefix):
- `conn-a`: stream `events`, incremental on updatedAt with no primary key (PyAirbyte appends);
- `conn-b`: stream `people`, incremental with a primary key (PyAirbyte merges).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from click.testing import CliRunner

from dataplatform.cli import main
from tests.helpers import rows, scalar
from tests.pyairbyte.utils.postgres_copy_cache.conftest import (  # noqa: F401 (fixtures)
    DATETIME_FORMAT,
    airbyte_environment,
    build_manifest,
    cache_schema,
    local_api,
)
from tests.pyairbyte.utils.postgres_copy_cache.test_incremental_state import (
    SCHEMA,
    IncrementalApi,
)

START = "2024-01-01T00:00:00Z"  # the manifests' start_datetime: a request from scratch
LOCATION = "events_location"


@pytest.fixture
def platform(local_api, cache_schema, tmp_path, monkeypatch):  # noqa: F811
    """Two connector YAMLs, a code location for conn-a, their APIs, and `sync(name)`."""
    apis = {"events": IncrementalApi(), "people": IncrementalApi()}
    local_api.handler = lambda path, params: apis[path.strip("/")].handler(path, params)
    connectors = tmp_path / "connectors"
    connectors.mkdir()
    for name, stream, pk in (("conn-a", "events", None), ("conn-b", "people", ["id"])):
        manifest = build_manifest(
            local_api.url,
            stream=stream,
            schema=SCHEMA,
            primary_key=pk,
            incremental_cursor="updatedAt",
        )
        document = {
            "version": 1,
            "name": name,
            "connector_type": "source",
            "config": {},
            "source_manifest": manifest,
            "streams": [stream],
        }
        (connectors / f"{name}.yaml").write_text(yaml.safe_dump(document))
    locations = tmp_path / "code-locations.json"
    entry = {"name": LOCATION, "metadata": {"connector": "conn-a"}}
    locations.write_text(json.dumps({"code_locations": [entry]}))
    monkeypatch.setenv("CONNECTORS_DIR", str(connectors))
    monkeypatch.setenv("CODE_LOCATIONS_FILE", str(locations))
    monkeypatch.setenv("CACHE_SCHEMA", cache_schema)

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    for i in range(1, 13):
        apis["events"].put(i, f"event {i}", start + timedelta(minutes=i))
    for i in range(1, 6):
        apis["people"].put(i, f"person {i}", start + timedelta(minutes=i))

    caches = []

    def sync(name: str) -> dict:
        from pyairbyte.utils.common_cache import get_cache
        from pyairbyte.utils.pyairbyte_sync import sync_connector

        caches.append(get_cache("default"))
        result = sync_connector(name, cache=caches[-1])
        assert result["status"] == "success", result["error"]
        return result

    yield {"apis": apis, "start": start, "sync": sync, "schema": cache_schema, "api": local_api}
    for cache in caches:
        cache.close()


def _state_rows(pg_conn, schema: str, source: str) -> list[tuple]:
    return rows(
        pg_conn,
        f'SELECT stream_name, table_name, state_json FROM "{schema}"._airbyte_state '
        "WHERE source_name = %s ORDER BY table_name",
        (source,),
    )


def _invoke(*args: str, input: str | None = None):  # noqa: A002 (click's name)
    return CliRunner().invoke(main, ["connector", "state", *args], input=input)


def _two_syncs_of_a(platform) -> str:
    """Sync conn-a twice (3 events added between) and conn-b once; the newest cursor."""
    platform["sync"]("conn-a")
    platform["sync"]("conn-b")
    later = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for i in range(13, 16):
        platform["apis"]["events"].put(i, f"event {i}", later + timedelta(minutes=i))
    before = len(platform["api"].requests)
    platform["sync"]("conn-a")
    second = [params for path, params in platform["api"].requests[before:]]
    first_run_newest = (platform["start"] + timedelta(minutes=12)).strftime(DATETIME_FORMAT)
    # The first request is `check`'s (no state); the read asks only for records since the cursor.
    assert second[0]["since"] == START
    assert [p["since"] for p in second[1:]] == [first_run_newest]
    return (later + timedelta(minutes=15)).strftime(DATETIME_FORMAT)


def test_show_reset_and_full_refresh(platform, pg_conn):
    from pyairbyte.utils.connector_config import get_connector_by_name
    from pyairbyte.utils.connector_state import read_connector_state
    from pyairbyte.utils.connector_streams import manifest_streams

    schema = platform["schema"]
    newest = _two_syncs_of_a(platform)
    events = f'"{schema}".events'
    rows_before = scalar(pg_conn, f"SELECT count(*) FROM {events}")
    assert scalar(pg_conn, f"SELECT count(DISTINCT id) FROM {events}") == 15

    hints = manifest_streams(get_connector_by_name("conn-a").source_manifest)
    assert hints == {"events": "updatedAt"}
    state = read_connector_state("conn-a", streams=hints)
    [stream] = state.streams
    assert (stream.stream, stream.table, stream.cursor_field) == ("events", "events", "updatedAt")
    assert stream.cursor_value == newest
    assert stream.rows == rows_before
    assert stream.last_sync_at is not None

    shown = _invoke("show", "conn-a")
    assert shown.exit_code == 0, shown.output
    assert "updatedAt" in shown.output and newest in shown.output
    assert f"events  updatedAt     {newest}" in shown.output

    b_state = _state_rows(pg_conn, schema, "conn-b")
    b_table = rows(pg_conn, f'SELECT id, name, _airbyte_raw_id FROM "{schema}".people ORDER BY id')
    assert b_state and len(b_table) == 5

    reset = _invoke("reset", "conn-a", "--yes")
    assert reset.exit_code == 0, reset.output
    assert f"empty table {schema}.events ({rows_before} rows)" in reset.output
    assert _state_rows(pg_conn, schema, "conn-a") == []
    assert scalar(pg_conn, f"SELECT count(*) FROM {events}") == 0
    assert "(no state" in _invoke("show", "conn-a").output

    before = len(platform["api"].requests)
    platform["sync"]("conn-a")
    after_reset = platform["api"].requests[before:]
    assert len(after_reset) == 3  # check, then pages 1 and 2 of 15 records: a full refresh
    assert {params["since"] for path, params in after_reset} == {START}
    # Exactly the source's rows: no duplicates of the earlier syncs, none of the boundary.
    assert scalar(pg_conn, f"SELECT count(*) FROM {events}") == 15
    assert scalar(pg_conn, f"SELECT count(DISTINCT id) FROM {events}") == 15

    # The other connector's state and table are exactly as they were.
    assert _state_rows(pg_conn, schema, "conn-b") == b_state
    assert rows(
        pg_conn, f'SELECT id, name, _airbyte_raw_id FROM "{schema}".people ORDER BY id'
    ) == (b_table)


def test_cli_confirmation_location_names_and_errors(platform, pg_conn):
    schema = platform["schema"]
    platform["sync"]("conn-a")
    platform["sync"]("conn-b")
    a_state = _state_rows(pg_conn, schema, "conn-a")
    count = scalar(pg_conn, f'SELECT count(*) FROM "{schema}".events')

    # A location name maps to its connector.
    shown = _invoke("show", LOCATION)
    assert shown.exit_code == 0, shown.output
    assert "connector conn-a" in shown.output and "events" in shown.output

    # Without --yes it asks; 'n' changes nothing.
    declined = _invoke("reset", LOCATION, "--stream", "events", input="n\n")
    assert declined.exit_code == 0, declined.output
    assert "delete state of events" in declined.output
    assert "reset? [y/N]" in declined.output and "nothing was changed" in declined.output
    assert _state_rows(pg_conn, schema, "conn-a") == a_state
    assert scalar(pg_conn, f'SELECT count(*) FROM "{schema}".events') == count

    unknown_stream = _invoke("reset", "conn-a", "--stream", "nope", "--yes")
    assert unknown_stream.exit_code == 1
    assert "connector conn-a has no stream 'nope'" in unknown_stream.output
    assert "its streams: events" in unknown_stream.output

    unknown = _invoke("show", "no-such-connector")
    assert unknown.exit_code == 1
    assert "no connector or code location named 'no-such-connector'" in unknown.output
    assert _state_rows(pg_conn, schema, "conn-a") == a_state

    # --stream with 'y': only that stream of conn-a; conn-b keeps its state.
    accepted = _invoke("reset", "conn-a", "--stream", "events", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert _state_rows(pg_conn, schema, "conn-a") == []
    assert len(_state_rows(pg_conn, schema, "conn-b")) == 1
    assert "Nothing to reset" in _invoke("reset", "conn-a", "--yes").output


def test_cache_table_name_matches_pyairbyte():
    from airbyte._util.name_normalizers import LowerCaseNormalizer

    from pyairbyte.utils.connector_state import cache_table_name

    for raw in ("events", "next_erp_Order-Lines", "1stream", "a.b c", "ÄÖ x"):
        assert cache_table_name(raw) == LowerCaseNormalizer.normalize(raw)


def test_cursor_shapes():
    from pyairbyte.utils.connector_streams import cursor_of as _cursor

    assert _cursor({"updatedAt": "2025-01-01"}, None) == ("updatedAt", "2025-01-01")
    assert _cursor({"__ab_no_cursor_state_message": True}, None) == (None, None)
    slices = {"state_type": "date-range", "slices": [{"start": "a", "end": "2025-02-01"}]}
    assert _cursor(slices, "ts") == ("ts", "2025-02-01")
    partitioned = {"states": [{}, {}], "state": {"ts": "2025-03-01"}}
    assert _cursor(partitioned, "ts") == ("ts", "2025-03-01")
    assert _cursor({"states": [{}, {}]}, "ts") == ("ts", "(2 partitions)")
