"""A private PostgreSQL cluster for local mode and tests, started from the server binaries on disk.

`initdb` refuses to run as root, so when we are root the cluster is created and run as the
unprivileged `postgres` system user (or $LOCAL_PG_OS_USER). The cluster listens on 127.0.0.1
only, on a port that does not collide with a system PostgreSQL.

Why a password: with trust auth every local OS user (`nobody` included) could connect as the
superuser and run `COPY ... TO PROGRAM`, i.e. any command as the cluster's OS user. So every
connection, TCP and socket, replication included, needs the superuser's password
(scram-sha-256). The password is generated at initdb, kept in `<cluster>.password` beside the
data directory with mode 0600 (readable only by the user who runs the platform), and handed to
the platform's processes as POSTGRES_PASSWORD in their environment; it is never logged. The
socket lives in the data directory (mode 0700), so other users cannot even reach it. A cluster
made by an older version with trust auth is switched over on its next start.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

import psycopg2
import psycopg2.sql

from dataplatform import settings as platform_settings
from pyairbyte.utils import pg


class LocalPostgresError(RuntimeError):
    pass


def find_pg_bin() -> Path:
    """The directory with initdb/pg_ctl: $PG_BIN, then PATH, then Debian's versioned dirs."""
    pg_bin = platform_settings.local_postgres().pg_bin
    if pg_bin is not None:
        return pg_bin
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
    user = platform_settings.local_postgres().os_user
    try:
        pwd.getpwnam(user)
    except KeyError:
        raise LocalPostgresError(
            f"running as root, and the OS user {user!r} to run PostgreSQL as does not exist; "
            "create it or set LOCAL_PG_OS_USER to an unprivileged user"
        ) from None
    return user


# Every connection needs the password; nothing is trusted, not even the local socket.
PG_HBA = """\
# Written by dataplatform (local/postgres.py): every connection needs the superuser password.
local   all             all                                     scram-sha-256
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     scram-sha-256
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
"""


def _write_private(path: Path, text: str, owner: str | None = None) -> None:
    """Create `path` with mode 0600 from the start (never briefly world-readable)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if owner:
        os.chown(path, pwd.getpwnam(owner).pw_uid, -1)


class LocalPostgres:
    def __init__(self, data_dir: Path, port: int, user: str = "postgres"):
        self.data_dir = Path(data_dir)
        self.port = port
        self.user = user  # the database superuser name
        self.host = "127.0.0.1"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def password_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.password"

    @property
    def password(self) -> str:
        """The superuser's password (generated at initdb); empty before the cluster exists."""
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            return ""

    def connect_kwargs(self, dbname: str = "postgres") -> dict:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": dbname,
        }

    def is_running(self) -> bool:
        try:
            pg.connect(self.connect_kwargs(), connect_timeout=2).close()
            return True
        except psycopg2.OperationalError as exc:
            # A server that refuses our credentials is running (a cluster still on trust auth
            # from an older version answers, too): start() then hardens or reports it.
            return "authentication failed" in str(exc) or "no password supplied" in str(exc)

    def _socket_dir(self) -> str:
        """The data directory (0700) for the socket, or none when its path is too long for one
        (a socket path is limited to 107 bytes); we only ever connect over TCP anyway."""
        return str(self.data_dir) if len(str(self.data_dir)) + len("/.s.PGSQL.65535") < 107 else ""

    def _uses_password_auth(self) -> bool:
        hba = self.data_dir / "pg_hba.conf"
        return hba.exists() and hba.read_text() == PG_HBA and bool(self.password)

    def _harden(self, pg_bin: Path, owner: str | None) -> None:
        """Switch a cluster made with trust auth to password auth, keeping its data."""
        if not self.password:
            _write_private(self.password_file, secrets.token_urlsafe(24))
        # Still on trust here, so the password is not needed to set it.
        conn = pg.connect(
            {"host": self.host, "port": self.port, "user": self.user, "dbname": "postgres"},
            connect_timeout=5,
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                psycopg2.sql.SQL("alter role {} with password %s").format(
                    psycopg2.sql.Identifier(self.user)
                ),
                (self.password,),
            )
        conn.close()
        hba = self.data_dir / "pg_hba.conf"
        stat = hba.stat()
        hba.write_text(PG_HBA)
        os.chown(hba, stat.st_uid, stat.st_gid)
        res = _run_as_owner([str(pg_bin / "pg_ctl"), "-D", str(self.data_dir), "reload"], owner)
        if res.returncode != 0:
            raise LocalPostgresError(f"could not reload {self.data_dir}:\n{res.stderr}")

    def start(self) -> None:
        """Create the cluster if needed and start it. Safe to call when it already runs."""
        pg_bin = find_pg_bin()
        owner = _os_user()
        if self.is_running():
            if not (self.data_dir / "postmaster.pid").exists():
                # Another cluster (another checkout's, with its own password) has the port: ours
                # would neither start nor let us in, so say which port to change.
                raise LocalPostgresError(
                    f"port {self.port} is served by a PostgreSQL that is not the cluster in "
                    f"{self.data_dir}; stop that server, or choose another port "
                    "(LOCAL_PG_PORT for the platform, TEST_LOCAL_PG_PORT for the tests)"
                )
            if not self._uses_password_auth():
                self._harden(pg_bin, owner)
            return
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
            _write_private(self.password_file, secrets.token_urlsafe(24))
            # initdb reads the password from a file its (unprivileged) owner can read; the
            # file is removed as soon as initdb is done.
            pwfile = self.data_dir.parent / f".{self.data_dir.name}.initdb-pw"
            _write_private(pwfile, self.password + "\n", owner)
            try:
                res = _run_as_owner(
                    [
                        str(pg_bin / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        self.user,
                        f"--pwfile={pwfile}",
                        "--auth-local=scram-sha-256",
                        "--auth-host=scram-sha-256",
                        "--encoding=UTF8",
                        "--no-instructions",
                    ],
                    owner,
                )
            finally:
                pwfile.unlink(missing_ok=True)
            if res.returncode != 0:
                raise LocalPostgresError(f"initdb failed in {self.data_dir}:\n{res.stderr}")
            (self.data_dir / "pg_hba.conf").write_text(PG_HBA)
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
                f"-p {self.port} -k '{self._socket_dir()}' -c listen_addresses=127.0.0.1 "
                "-c unix_socket_permissions=0700",
                "start",
            ],
            owner,
        )
        if res.returncode == 0 and not self._uses_password_auth():
            self._harden(pg_bin, owner)
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
        conn = pg.connect(self.connect_kwargs())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (dbname,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{dbname}"')
        conn.close()
