"""Shared fixtures: a real PostgreSQL for every test session.

If POSTGRES_HOST is set, tests use that server. Otherwise they start a private cluster from the
PostgreSQL server binaries on the machine (as an unprivileged user when run as root), under
.project/test-postgres, on a port that does not collide with a system PostgreSQL.

Each session gets a fresh database, and POSTGRES_* are exported so that subprocesses (dbt, code
servers) reach the same database.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg2
import pytest

from pyairbyte import settings
from pyairbyte.devtools.local_postgres import LocalPostgres

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DB = os.environ.get("TEST_POSTGRES_DB", "dataplatform_test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recreate_database(admin_kwargs: dict, dbname: str) -> None:
    conn = psycopg2.connect(**{**admin_kwargs, "dbname": "postgres"})
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{dbname}" with (force)')
        cur.execute(f'create database "{dbname}"')
    conn.close()


@pytest.fixture(scope="session", autouse=True)
def project_env(tmp_path_factory):
    """Runtime files (connector venvs, logs, staging) under one project directory.

    Connector venvs are reused between sessions (.project/connectors) because installing
    source-faker from PyPI is slow; everything else is per session.
    """
    os.environ.setdefault("DATAPLATFORM_PROJECT_DIR", str(REPO_ROOT / ".project"))
    os.environ["DAGSTER_HOME"] = str(tmp_path_factory.mktemp("dagster_home"))
    yield


@pytest.fixture(scope="session")
def pg(project_env) -> settings.PostgresSettings:
    """A real PostgreSQL database for this test session; POSTGRES_* point at it."""
    if os.environ.get("POSTGRES_HOST"):
        base = settings.postgres_settings()
        admin = {k: v for k, v in base.psycopg2_kwargs().items() if k != "dbname"}
        cluster = None
    else:
        cluster = LocalPostgres(
            data_dir=settings.project_dir() / "test-postgres" / "data",
            port=int(os.environ.get("TEST_LOCAL_PG_PORT") or _free_port()),
        )
        cluster.start()
        admin = {"host": cluster.host, "port": cluster.port, "user": cluster.user, "password": ""}
    _recreate_database(admin, TEST_DB)
    os.environ.update(
        {
            "POSTGRES_HOST": str(admin["host"]),
            "POSTGRES_PORT": str(admin["port"]),
            "POSTGRES_USER": str(admin["user"]),
            "POSTGRES_PASSWORD": str(admin.get("password") or ""),
            "POSTGRES_DB": TEST_DB,
        }
    )
    yield settings.postgres_settings()
    if cluster is not None:
        cluster.stop()


@pytest.fixture
def pg_conn(pg):
    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    conn.autocommit = True
    yield conn
    conn.close()
