"""The one psycopg2 connection helper, against the real test PostgreSQL."""

from __future__ import annotations

import socket
import time

import psycopg2
import pytest

from pyairbyte import settings
from pyairbyte.utils import pg as pg_helper


def test_a_connection_uses_postgres_settings_and_names_itself(pg_conn):
    held = pg_helper.connect(application_name="dataplatform-test-probe")
    try:
        with pg_conn.cursor() as cur:
            cur.execute(
                "select datname from pg_stat_activity where application_name = %s",
                ("dataplatform-test-probe",),
            )
            assert cur.fetchall() == [(settings.postgres_settings().db,)]
    finally:
        held.close()


def test_cursor_commits_on_success_and_rolls_back_on_error(pg_conn):
    with pg_helper.cursor() as cur:
        cur.execute("create table if not exists pg_helper_probe (v int)")
        cur.execute("truncate pg_helper_probe")
    with pytest.raises(ZeroDivisionError), pg_helper.cursor() as cur:
        cur.execute("insert into pg_helper_probe values (1)")
        raise ZeroDivisionError
    with pg_helper.cursor() as cur:
        cur.execute("insert into pg_helper_probe values (2)")
    with pg_helper.cursor() as cur:
        cur.execute("select array_agg(v) from pg_helper_probe")
        assert cur.fetchone()[0] == [2]
        cur.execute("drop table pg_helper_probe")


def test_a_server_that_never_answers_is_an_error_not_a_hang(pg_conn):
    # A socket that listens but never speaks: the TCP handshake completes (backlog), which is
    # how a hung host looks to a client. Without connect_timeout psycopg2 waits forever; the
    # bound below only tells "gave up" from "hung", it is not a speed target.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        params = {**settings.postgres_settings().psycopg2_kwargs(), "port": silent.getsockname()[1]}
        t0 = time.monotonic()
        with pytest.raises(psycopg2.OperationalError, match="timeout"):
            pg_helper.connect(params, connect_timeout=2)
        assert time.monotonic() - t0 < 60
