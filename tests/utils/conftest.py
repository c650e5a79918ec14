"""Fixtures for the utils tests: per-test schemas on the session database, MariaDB access."""

from __future__ import annotations

import os
import re

import pymysql
import pytest
from psycopg2 import sql

MYSQL_HOST = os.environ.get("MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("MYSQL_PASSWORD", "")


def _schema_name(request, prefix: str) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())
    return f"{prefix}_{name}"[:60]


@pytest.fixture
def event_schema(pg, pg_conn, request, monkeypatch):
    """A fresh event-store schema for one test (EVENT_STORE_SCHEMA points at it)."""
    from pyairbyte.utils import event_store

    schema = _schema_name(request, "es")
    monkeypatch.setenv("EVENT_STORE_SCHEMA", schema)
    event_store._ensured.clear()  # the schema is dropped between tests
    with pg_conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
    yield schema
    with pg_conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


@pytest.fixture
def cache_schema(pg, pg_conn, request):
    """A fresh target schema name for one test; dropped afterwards."""
    schema = _schema_name(request, "cache")
    with pg_conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
    yield schema
    with pg_conn.cursor() as cur:
        cur.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def mysql_db():
    """A private MariaDB/MySQL database for this session (dropped at the end); MYSQL_* exported."""
    try:
        conn = pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user=MYSQL_USER,
            password=MYSQL_PASSWORD,
            autocommit=True,
            connect_timeout=5,
        )
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"no MariaDB/MySQL at {MYSQL_HOST}:{MYSQL_PORT}: {exc}")
    database = f"dp_test_{os.getpid()}"
    with conn.cursor() as cur:
        cur.execute(f"drop database if exists `{database}`")
        cur.execute(f"create database `{database}` character set utf8mb4")
    saved = {
        k: os.environ.get(k) for k in ("MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD")
    }
    os.environ.update(
        {
            "MYSQL_HOST": MYSQL_HOST,
            "MYSQL_PORT": str(MYSQL_PORT),
            "MYSQL_USER": MYSQL_USER,
            "MYSQL_PASSWORD": MYSQL_PASSWORD,
        }
    )
    yield database
    with conn.cursor() as cur:
        cur.execute(f"drop database if exists `{database}`")
    conn.close()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def mysql_conn(mysql_db):
    conn = pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        password=MYSQL_PASSWORD,
        database=mysql_db,
        autocommit=True,
        charset="utf8mb4",
    )
    yield conn
    conn.close()


# --- A real GraphQL server (graphql-core + http.server) on 127.0.0.1 -------------------------

GRAPHQL_SDL = """
type User { id: Int!, first_name: String!, last_name: String!, active: Boolean! }
type Query {
  users(active: Boolean): [User!]!
  user(id: Int!): User
}
"""

USERS = [
    {"id": 1, "first_name": "Åsa", "last_name": "Lindqvist", "active": True},
    {"id": 2, "first_name": "Nils", "last_name": "Berg", "active": False},
    {"id": 3, "first_name": "Maja", "last_name": "Öberg", "active": True},
]


class GraphQLServerState:
    """What the test server does; tests change it between requests."""

    def __init__(self):
        self.admin_secret: str | None = "s3cret"  # required x-hasura-admin-secret (None: no auth)
        self.bearer_token: str | None = None  # alternatively accepted bearer token
        self.fail_statuses: list[int] = []  # answer these HTTP statuses first, one per request
        self.delay_seconds = 0.0
        self.requests: list[dict] = []  # headers and body of every request received
        self.users = [dict(u) for u in USERS]


@pytest.fixture
def graphql_server():
    import json
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from graphql import build_schema, graphql_sync

    schema = build_schema(GRAPHQL_SDL)
    state = GraphQLServerState()

    def root():
        return {
            "users": lambda info, active=None: [
                u for u in state.users if active is None or u["active"] == active
            ],
            "user": lambda info, id: next((u for u in state.users if u["id"] == id), None),
        }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, status: int, body: dict | str):
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append({"headers": dict(self.headers), "body": raw.decode()})
            if state.delay_seconds:
                time.sleep(state.delay_seconds)
            if state.fail_statuses:
                return self._send(state.fail_statuses.pop(0), "<html>Service Unavailable</html>")
            authorized = (
                (state.admin_secret is None and state.bearer_token is None)
                or (
                    state.admin_secret is not None
                    and self.headers.get("x-hasura-admin-secret") == state.admin_secret
                )
                or (
                    state.bearer_token is not None
                    and self.headers.get("Authorization") == f"Bearer {state.bearer_token}"
                )
            )
            if not authorized:
                return self._send(401, {"error": "invalid x-hasura-admin-secret or token"})
            payload = json.loads(raw)
            result = graphql_sync(
                schema,
                payload["query"],
                root_value=root(),
                variable_values=payload.get("variables"),
                operation_name=payload.get("operationName"),
            )
            body = {"data": result.data}
            if result.errors:
                body["errors"] = [e.formatted for e in result.errors]
            self._send(200, body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/v1/graphql"
    yield state
    server.shutdown()
    server.server_close()


# --- A plain HTTP API on 127.0.0.1 that records what it receives ------------------------------


class HttpApiState:
    def __init__(self):
        # path -> (status, body); unknown paths answer 404.
        self.routes: dict[str, tuple[int, str]] = {"/ok": (201, '{"accepted": true}')}
        self.delay_seconds = 0.0
        self.received: list[dict] = []  # method, path, headers, body


@pytest.fixture
def http_api():
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = HttpApiState()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _handle(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": raw.decode(),
                }
            )
            if state.delay_seconds:
                time.sleep(state.delay_seconds)
            status, body = state.routes.get(self.path, (404, "not found"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    yield state
    server.shutdown()
    server.server_close()
