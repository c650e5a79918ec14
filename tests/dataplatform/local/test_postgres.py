"""The private PostgreSQL cluster: real, and closed to every other local user.

Each test here creates its own cluster from the server binaries on disk (initdb takes a few
seconds) under the project directory, which the unprivileged cluster owner can reach.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import psycopg2
import pytest

from dataplatform.local.postgres import LocalPostgres
from pyairbyte import settings
from tests.ports import free_port

ATTACK = "COPY (select 1) TO PROGRAM 'id > {marker}'"


def test_session_database_is_real_postgres(pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute("select current_database(), version()")
        db, version = cur.fetchone()
    assert db.startswith("dataplatform_test")
    assert version.startswith("PostgreSQL")


@pytest.fixture
def cluster():
    # A short path, so the cluster's socket (limited to 107 bytes) exists and is tested too.
    root = settings.project_dir() / "tpg" / uuid.uuid4().hex[:8]
    shutil.rmtree(root, ignore_errors=True)
    pg = LocalPostgres(data_dir=root / "data", port=free_port())
    yield pg
    pg.stop()
    shutil.rmtree(root, ignore_errors=True)


def _as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another local user (nobody)")
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *cmd], capture_output=True, text=True, timeout=30
    )


def _psql_as_nobody(pg: LocalPostgres, host: str, sql: str) -> subprocess.CompletedProcess:
    return _as_nobody(
        "env", "PGCONNECT_TIMEOUT=5", "psql", "-h", host, "-p", str(pg.port), "-U", pg.user,
        "-d", "postgres", "-w", "-c", sql,
    )  # fmt: skip


def _assert_closed_to_other_users(pg: LocalPostgres) -> None:
    # /tmp, so that the cluster's OS user could write the marker if PostgreSQL ran the COPY.
    marker = Path("/tmp") / f"dataplatform-pwned-{uuid.uuid4().hex}"
    for host in ("127.0.0.1", "localhost", str(pg.data_dir)):
        res = _psql_as_nobody(pg, host, ATTACK.format(marker=marker))
        assert res.returncode != 0, (host, res.stdout)
        assert (
            "password authentication failed" in res.stderr
            or "no password supplied" in res.stderr
            or "Permission denied" in res.stderr
        ), (host, res.stderr)
    assert not marker.exists()
    # nobody cannot read the password either.
    assert _as_nobody("cat", str(pg.password_file)).returncode != 0


def test_private_cluster_needs_the_password_and_keeps_it_private(cluster):
    cluster.start()
    assert len(cluster.password) >= 24
    assert stat.S_IMODE(cluster.password_file.stat().st_mode) == 0o600
    assert "trust" not in (cluster.data_dir / "pg_hba.conf").read_text()

    conn = psycopg2.connect(**cluster.connect_kwargs())
    with conn.cursor() as cur:
        cur.execute("select 1")
        assert cur.fetchone() == (1,)
    conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(**{**cluster.connect_kwargs(), "password": "wrong"})

    _assert_closed_to_other_users(cluster)
    # Started again while running: still closed, same password.
    password = cluster.password
    cluster.start()
    assert cluster.password == password


def test_a_cluster_left_on_trust_auth_is_switched_to_passwords(cluster):
    """A cluster an older version created (trust, no password) is hardened on its next start."""
    cluster.start()
    cluster.stop()
    hba = cluster.data_dir / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    cluster.password_file.unlink()
    cluster.start()

    assert cluster.password
    assert "trust" not in hba.read_text()
    psycopg2.connect(**cluster.connect_kwargs()).close()
    _assert_closed_to_other_users(cluster)
