"""A private PostgreSQL cluster for local mode and tests, started from the server binaries on disk.

`initdb` refuses to run as root, so when we are root the cluster is created and run as the
unprivileged `postgres` system user (or $LOCAL_PG_OS_USER). The cluster listens on 127.0.0.1
only, on a port that does not collide with a system PostgreSQL, with trust auth for local use.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg2


class LocalPostgresError(RuntimeError):
    pass


def find_pg_bin() -> Path:
    """The directory with initdb/pg_ctl: $PG_BIN, then PATH, then Debian's versioned dirs."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise LocalPostgresError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found. Install the Debian package "
        "postgresql, or set PG_BIN to their directory, or set POSTGRES_HOST to use a server."
    )


def _run_as_owner(cmd: list[str], owner: str | None, **kwargs) -> subprocess.CompletedProcess:
    if owner:
        cmd = ["runuser", "-u", owner, "--", *cmd]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, **kwargs)


def _os_user() -> str | None:
    """The unprivileged user to run the cluster as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    user = os.environ.get("LOCAL_PG_OS_USER", "postgres")
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise LocalPostgresError(
            f"running as root, and the OS user {user!r} to run PostgreSQL as does not exist; "
            "create it or set LOCAL_PG_OS_USER to an unprivileged user"
        ) from None
    return user


class LocalPostgres:
    def __init__(self, data_dir: Path, port: int, user: str = "postgres"):
        self.data_dir = Path(data_dir)
        self.port = port
        self.user = user  # the database superuser name
        self.host = "127.0.0.1"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def is_running(self) -> bool:
        try:
            psycopg2.connect(
                host=self.host, port=self.port, user=self.user, dbname="postgres", connect_timeout=2
            ).close()
            return True
        except psycopg2.OperationalError:
            return False

    def start(self) -> None:
        """Create the cluster if needed and start it. Safe to call when it already runs."""
        if self.is_running():
            return
        pg_bin = find_pg_bin()
        owner = _os_user()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if owner:
            # The owner must be able to reach and write its own files.
            uid = pwd.getpwnam(owner).pw_uid
            for d in (self.data_dir.parent,):
                os.chown(d, uid, -1)
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if owner:
                os.chown(self.data_dir, pwd.getpwnam(owner).pw_uid, -1)
            res = _run_as_owner(
                [
                    str(pg_bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                owner,
            )
            if res.returncode != 0:
                raise LocalPostgresError(f"initdb failed in {self.data_dir}:\n{res.stderr}")
        res = _run_as_owner(
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1",
                "start",
            ],
            owner,
        )
        if res.returncode != 0 or not self.is_running():
            log_tail = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise LocalPostgresError(
                f"could not start PostgreSQL in {self.data_dir} on port {self.port}:\n"
                f"{res.stdout}{res.stderr}\n{log_tail}"
            )

    def stop(self) -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        _run_as_owner(
            [str(find_pg_bin() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            _os_user(),
        )

    def ensure_database(self, dbname: str) -> None:
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (dbname,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{dbname}"')
        conn.close()
