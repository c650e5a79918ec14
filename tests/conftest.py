"""Shared fixtures: a real PostgreSQL for every test session.

If POSTGRES_HOST is set, tests use that server. Otherwise they start a private cluster from the
PostgreSQL server binaries on the machine (as an unprivileged user when run as root), under
.project/test-postgres, on port 55432 (TEST_LOCAL_PG_PORT), which does not collide with a system
PostgreSQL. That cluster is left running for the next session.

Each session gets a fresh database, and POSTGRES_* are exported so that subprocesses (dbt, code
servers) reach the same database.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg2
import pytest

from dataplatform.local.postgres import LocalPostgres
from pyairbyte import settings
from tests.helpers import exported_env

# Fixtures for the other services (MariaDB, a local GraphQL server, a local HTTP API, scratch
# schemas), shared by the utils tests and the pattern-location tests.
pytest_plugins = ["tests.fixtures.services"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# One database per session, so concurrent sessions on one server never collide.
TEST_DB = os.environ.get("TEST_POSTGRES_DB") or f"dataplatform_test_{os.getpid()}"


def _recreate_database(admin_kwargs: dict, dbname: str) -> None:
    conn = psycopg2.connect(**{**admin_kwargs, "dbname": "postgres"})
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{dbname}" with (force)')
        cur.execute(f'create database "{dbname}"')
    conn.close()


def _drop_database(admin_kwargs: dict, dbname: str) -> None:
    if os.environ.get("KEEP_TEST_DB"):
        return
    conn = psycopg2.connect(**{**admin_kwargs, "dbname": "postgres"})
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{dbname}" with (force)')
    conn.close()


def pytest_configure(config):
    # A CI that starts pytest in the background (`cmd &` without job control) leaves SIGINT
    # ignored. Dagster's in-process execution then maps SIGTERM onto SIGINT's handler
    # (dagster._utils.interrupts), so SIGTERM becomes ignored in this process and in every child
    # it starts: Dagster's own compute-log `tail` then outlives its SIGTERM. The platform's
    # processes reset this the same way (dataplatform.runtime.processes.signals_not_ignored).
    from dataplatform.runtime.processes import signals_not_ignored

    signals_not_ignored()


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
            # A fixed port, so concurrent sessions share one running test cluster.
            port=int(os.environ.get("TEST_LOCAL_PG_PORT", "55432")),
        )
        cluster.start()
        admin = {
            "host": cluster.host,
            "port": cluster.port,
            "user": cluster.user,
            "password": cluster.password,
        }
    _recreate_database(admin, TEST_DB)
    with exported_env(
        POSTGRES_HOST=admin["host"],
        POSTGRES_PORT=admin["port"],
        POSTGRES_USER=admin["user"],
        POSTGRES_PASSWORD=admin.get("password") or "",
        POSTGRES_DB=TEST_DB,
    ):
        yield settings.postgres_settings()
    _drop_database(admin, TEST_DB)


@pytest.fixture
def pg_conn(pg):
    conn = psycopg2.connect(**pg.psycopg2_kwargs())
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def sample_api(monkeypatch):
    """The local sample products API (30 fixture products), with SAMPLE_API_URL pointing at it."""
    from dataplatform.local.sample_api import SampleProductsApi

    api = SampleProductsApi().start()
    monkeypatch.setenv("SAMPLE_API_URL", api.url)
    yield api
    api.stop()


# Test tiers follow from the fixtures a test uses (pytest resolves the whole closure, so a test
# asking for `pg_conn` or `cache_schema` needs `pg` too). A new test lands in the right tier
# without anyone remembering a marker; `slow` is the one marker written by hand.
TIER_FIXTURES = {
    "db": {"pg", "cluster"},  # the session database; a private PostgreSQL cluster
    "mysql": {"mysql_db"},
    # dagster-init with code servers; `make up`'s whole platform; a platform that reloads;
    # and the fault-injection platform
    "platform": {"supervised", "platform", "running_platform", "fault_platform"},
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        # The slow tests of tests/reliability/ (a platform each, minutes) are their own tier.
        if "reliability" in item.path.parts and item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.fault)
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in TIER_FIXTURES.items():
            if used & fixtures:
                item.add_marker(marker)
