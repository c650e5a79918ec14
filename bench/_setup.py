"""Shared set-up for benchmarks: a real PostgreSQL database and the project's env."""

from __future__ import annotations

import os

import psycopg2

from dataplatform.local.postgres import LocalPostgres
from pyairbyte import settings


def bench_database(dbname: str = "dataplatform_bench") -> settings.PostgresSettings:
    """POSTGRES_* from env when POSTGRES_HOST is set, else the private test cluster (55432)."""
    if not os.environ.get("POSTGRES_HOST"):
        cluster = LocalPostgres(
            settings.project_dir() / "test-postgres" / "data",
            int(os.environ.get("TEST_LOCAL_PG_PORT", "55432")),
        )
        cluster.start()
        os.environ.update(
            POSTGRES_HOST=cluster.host,
            POSTGRES_PORT=str(cluster.port),
            POSTGRES_USER=cluster.user,
            POSTGRES_PASSWORD=cluster.password,  # the private cluster needs it
        )
    admin = settings.postgres_settings().psycopg2_kwargs() | {"dbname": "postgres"}
    conn = psycopg2.connect(**admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{dbname}" with (force)')
        cur.execute(f'create database "{dbname}"')
    conn.close()
    os.environ["POSTGRES_DB"] = dbname
    return settings.postgres_settings()


def make_cache(kind: str, schema: str, cache_dir):
    """A cache on POSTGRES_*: PyAirbyte's stock `PostgresCache` (kind "stock") or the
    project's `CopyPostgresCache`, writing `schema` and staging under `cache_dir`."""
    from pyairbyte.utils.postgres_copy_cache import CopyPostgresCache

    if kind == "stock":
        from airbyte.caches import PostgresCache as cache_class
    else:
        cache_class = CopyPostgresCache
    pg = settings.postgres_settings()
    return cache_class(
        host=pg.host,
        port=pg.port,
        username=pg.user,
        password=pg.password,
        database=pg.dbname,
        schema_name=schema,
        cache_dir=cache_dir,
    )
