"""Fixtures for the cache tests: a local JSON API, declarative manifests for it, and caches.

Every test reads through a real declarative (manifest) source that PyAirbyte runs in-process,
against an HTTP server on 127.0.0.1 that the test controls, into the session's PostgreSQL.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from psycopg2 import sql

from pyairbyte import settings

DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# A handler gets (path, query params) and returns the response body, or None to drop the
# connection without answering (what a crashing upstream or a network cut looks like).
Handler = Callable[[str, dict[str, str]], bytes | None]


class LocalApi:
    """A threaded HTTP server whose responses come from `self.handler`; logs every request."""

    def __init__(self) -> None:
        self.handler: Handler = lambda path, params: b'{"data": [], "next_page": null}'
        self.requests: list[tuple[str, dict[str, str]]] = []
        api = self

        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {key: values[-1] for key, values in parse_qs(url.query).items()}
                api.requests.append((url.path, params))
                body = api.handler(url.path, params)
                if body is None:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep test output clean

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def page_body(record_texts: list[str], next_page: int | None) -> bytes:
    """A page of records, given as exact JSON texts (so numbers keep the digits we chose)."""
    next_text = "null" if next_page is None else str(next_page)
    return ('{"data": [' + ", ".join(record_texts) + '], "next_page": ' + next_text + "}").encode()


def paged(record_texts: list[str], page_size: int, fail_on_page: int | None = None) -> Handler:
    """Serve `record_texts` in pages (?page=1,2,...); drop the connection on `fail_on_page`."""

    def handler(path: str, params: dict[str, str]) -> bytes | None:
        page = int(params.get("page", "1"))
        if page == fail_on_page:
            return None
        start = (page - 1) * page_size
        more = start + page_size < len(record_texts)
        return page_body(record_texts[start : start + page_size], page + 1 if more else None)

    return handler


def build_manifest(
    base_url: str,
    *,
    stream: str,
    schema: dict,
    primary_key: list[str] | None = None,
    incremental_cursor: str | None = None,
) -> dict:
    """A declarative manifest for one paginated stream of the local API at /<stream>.

    No retries: a dropped connection must fail the read at once, not after minutes of backoff.
    With `incremental_cursor`, the stream is incremental on that field, sent as ?since=.
    """
    stream_definition: dict = {
        "type": "DeclarativeStream",
        "name": stream,
        "primary_key": primary_key or [],
        "schema_loader": {"type": "InlineSchemaLoader", "schema": schema},
        "retriever": {
            "type": "SimpleRetriever",
            "requester": {
                "type": "HttpRequester",
                "url_base": base_url,
                "path": f"/{stream}",
                "http_method": "GET",
                "error_handler": {"type": "DefaultErrorHandler", "max_retries": 0},
            },
            "record_selector": {
                "type": "RecordSelector",
                "extractor": {"type": "DpathExtractor", "field_path": ["data"]},
            },
            "paginator": {
                "type": "DefaultPaginator",
                "page_token_option": {
                    "type": "RequestOption",
                    "inject_into": "request_parameter",
                    "field_name": "page",
                },
                "pagination_strategy": {
                    "type": "CursorPagination",
                    "cursor_value": "{{ response.next_page }}",
                    "stop_condition": "{{ response.next_page is none }}",
                },
            },
        },
    }
    if incremental_cursor:
        stream_definition["incremental_sync"] = {
            "type": "DatetimeBasedCursor",
            "cursor_field": incremental_cursor,
            "datetime_format": DATETIME_FORMAT,
            "start_datetime": {
                "type": "MinMaxDatetime",
                "datetime": "2024-01-01T00:00:00Z",
                "datetime_format": DATETIME_FORMAT,
            },
            "start_time_option": {
                "type": "RequestOption",
                "inject_into": "request_parameter",
                "field_name": "since",
            },
        }
    return {
        "version": "6.0.0",
        "type": "DeclarativeSource",
        "check": {"type": "CheckStream", "stream_names": [stream]},
        "streams": [stream_definition],
        "spec": {
            "type": "Spec",
            "connection_specification": {"type": "object", "properties": {}},
        },
    }


@pytest.fixture(scope="session", autouse=True)
def airbyte_environment(project_env):
    """Offline mode and PyAirbyte's files under the project dir, before `airbyte` is imported."""
    from pyairbyte.utils.airbyte_env import configure_airbyte_environment

    configure_airbyte_environment()


@pytest.fixture(autouse=True)
def small_staging_batches(monkeypatch):
    """Close a staged file every 4 records (instead of 10,000), so that even these small tests
    load several files per stream, in the background while the source is still being read."""
    from pyairbyte.utils.postgres_copy_cache.staging import FastJsonlWriter

    monkeypatch.setattr(FastJsonlWriter, "MAX_BATCH_SIZE", 4)


@pytest.fixture
def local_api():
    api = LocalApi()
    yield api
    api.close()


@pytest.fixture
def declarative_source(local_api):
    """Build a PyAirbyte declarative source for the local API: (stream, schema, ...) -> Source."""

    def make(stream: str, schema: dict, **manifest_options):
        import airbyte as ab

        manifest = build_manifest(local_api.url, stream=stream, schema=schema, **manifest_options)
        source = ab.get_source(f"source-{stream}-test", source_manifest=manifest, config={})
        source.select_all_streams()
        return source

    return make


@pytest.fixture
def cache_schema(pg, pg_conn, request):
    """A fresh schema name for one test; dropped before and after."""
    schema = ("cache_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower()))[:60]

    def drop() -> None:
        with pg_conn.cursor() as cur:
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    drop()
    yield schema
    drop()


@pytest.fixture
def make_cache(pg):
    """(schema, stock=False) -> a CopyPostgresCache, or PyAirbyte's stock PostgresCache."""
    caches = []

    def make(schema: str, *, stock: bool = False):
        from pyairbyte.utils.postgres_copy_cache import CopyPostgresCache

        if stock:
            from airbyte.caches import PostgresCache as cache_class
        else:
            cache_class = CopyPostgresCache
        cache = cache_class(
            host=pg.host,
            port=pg.port,
            username=pg.user,
            password=pg.password,
            database=pg.dbname,
            schema_name=schema,
            cache_dir=settings.project_dir() / "airbyte" / "cache" / "tests" / schema,
        )
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        cache.close()
