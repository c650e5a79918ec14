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
