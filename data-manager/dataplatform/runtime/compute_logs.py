"""Compute logs (each step's stdout and stderr) stored in the platform's PostgreSQL.

Dagster's default LocalComputeLogManager keeps them under $DAGSTER_HOME/storage on the host whose
run worker ran the step, so a webserver on another host (test_sharding.py's two hosts, or the Helm
chart's pods) shows nothing. `PostgresComputeLogManager` is Dagster's
TruncatingCloudStorageComputeLogManager with PostgreSQL as the "cloud storage":

- the run worker captures into a local staging dir (default $DAGSTER_HOME/storage, where the
  default manager wrote), uploads the files every `upload_interval` seconds while the step runs
  (a `partial` row) and once more when it ends (the complete row, which replaces the partial
  one), then deletes the local copies;
- any other process reads the complete row, or while the step runs the partial one, into its own
  staging dir, and the webserver's `/logs/...` download route serves that file.

Rows live in one table, created on first use:

    dagster_compute_logs(log_key text, io_type text, partial boolean, data bytea,
                         updated_at timestamptz, primary key (log_key, io_type, partial))

`log_key` is the Dagster log key joined with `/` (`<run id>/compute_logs/<step keys>`); io_type is
`stdout` or `stderr`. Each file is capped at DAGSTER_TRUNCATE_COMPUTE_LOGS_UPLOAD_BYTES (Dagster's
setting for this base class, default 50 MB); the rest stays out of the database.

The connection is a dagster-postgres style `postgres_db` block (or `postgres_url`), read from the
same POSTGRES_* env as the storages in platform/dagster.yaml. Without either, the manager uses the
instance's own PostgresRunStorage database: that is what the Helm values do, because the chart
renders the storages' connection itself (its postgresql.* values and DAGSTER_PG_PASSWORD), and the
POSTGRES_* env in the chart's pods is the PyAirbyte cache's, which the webserver does not get.
Nothing here logs the connection or the config; the table holds only what steps printed.

The base classes are Dagster internals (imported through dataplatform.runtime.dagster_internals),
so this module refuses any dagster but the pinned release, and tests/dataplatform/runtime/
test_compute_logs.py fails when their abstract methods or the hooks used here change.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from typing import IO, Any

from dagster import Field, IntSource, Noneable, StringSource

from dataplatform.runtime.dagster_internals import (
    IO_TYPE_EXTENSION,
    CapturedLogSubscription,
    ComputeIOType,
    ConfigurableClass,
    ConfigurableClassData,
    LocalComputeLogManager,
    PollingComputeLogSubscriptionManager,
    TruncatingCloudStorageComputeLogManager,
    check_dagster_version,
    instance_of,
    pg_config,
    truncated_logs,
)

TABLE = "dagster_compute_logs"
DEFAULT_UPLOAD_INTERVAL = 10  # seconds between partial uploads of a running step's logs
_CREATE_LOCK = 0x6463_6C6F_6773  # pg advisory lock id: concurrent first uses create the table once

logger = logging.getLogger("dataplatform.compute_logs")


class ComputeLogConfigError(RuntimeError):
    pass


def _key(log_key: Sequence[str]) -> str:
    return "/".join(log_key)


class PostgresComputeLogManager(TruncatingCloudStorageComputeLogManager, ConfigurableClass):
    """Captures compute logs locally and keeps them in PostgreSQL for every host to read.

    Configured in dagster.yaml:

        compute_logs:
          module: dataplatform.runtime.compute_logs
          class: PostgresComputeLogManager
          config:
            postgres_db: {hostname: {env: POSTGRES_HOST}, ...}   # or postgres_url; or neither
            upload_interval: 10      # optional; null: upload only when the step ends
            local_dir: /some/dir     # optional; default $DAGSTER_HOME/storage
    """

    def __init__(
        self,
        postgres_url: str | None = None,
        local_dir: str | None = None,
        upload_interval: int | None = DEFAULT_UPLOAD_INTERVAL,
        inst_data: ConfigurableClassData | None = None,
    ):
        check_dagster_version()
        super().__init__()
        self._postgres_url = postgres_url
        self._local_dir = local_dir
        self._upload_interval = upload_interval
        self._inst_data = inst_data
        self._local_manager: LocalComputeLogManager | None = None
        self._engine = None
        self._table_ready = False
        self._subscription_manager = PollingComputeLogSubscriptionManager(self)

    # ConfigurableClass

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        # dagster-postgres's postgres_url / postgres_db fields, so the block is the storages' own;
        # its token auth_provider is left out (this manager connects with a password only).
        connection = {k: v for k, v in pg_config().items() if k != "auth_provider"}
        return {
            **connection,
            "local_dir": Field(StringSource, is_required=False),
            "upload_interval": Field(
                Noneable(IntSource), is_required=False, default_value=DEFAULT_UPLOAD_INTERVAL
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PostgresComputeLogManager:
        url = None
        if config_value.get("postgres_url") or config_value.get("postgres_db"):
            from dagster_postgres.utils import pg_url_from_config

            url = pg_url_from_config(config_value)
        return cls(
            postgres_url=url,
            local_dir=config_value.get("local_dir"),
            upload_interval=config_value.get("upload_interval", DEFAULT_UPLOAD_INTERVAL),
            inst_data=inst_data,
        )

    # CloudStorageComputeLogManager's abstract parts

    @property
    def local_manager(self) -> LocalComputeLogManager:
        if self._local_manager is None:
            base_dir = self._local_dir
            if not base_dir:
                instance = self._instance_or_none()
                base_dir = (
                    os.path.join(instance.root_directory, "storage")
                    if instance is not None
                    else os.path.join(tempfile.gettempdir(), "dagster-compute-logs")
                )
            self._local_manager = LocalComputeLogManager(base_dir)
        return self._local_manager

    @property
    def upload_interval(self) -> int | None:
        return self._upload_interval or None

    def delete_logs(
        self, log_key: Sequence[str] | None = None, prefix: Sequence[str] | None = None
    ) -> None:
        self.local_manager.delete_logs(log_key=log_key, prefix=prefix)
        if log_key:
            self._execute(f"DELETE FROM {TABLE} WHERE log_key = :k", k=_key(log_key))
        elif prefix:
            self._execute(
                f"DELETE FROM {TABLE} WHERE starts_with(log_key, :p)", p=_key(prefix) + "/"
            )

    def download_url_for_type(self, log_key: Sequence[str], io_type: ComputeIOType) -> str | None:
        # The webserver's /logs/<key>/<ext> route fetches the row to its staging dir, serves it.
        return self.local_manager.get_captured_log_download_url(log_key, io_type)

    def display_path_for_type(self, log_key: Sequence[str], io_type: ComputeIOType) -> str:
        return f"postgresql {TABLE}: {_key(log_key)} ({io_type.value})"

    def cloud_storage_has_logs(
        self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
    ) -> bool:
        rows = self._fetch(
            f"SELECT 1 FROM {TABLE} WHERE log_key = :k AND io_type = :t AND partial = :p",
            k=_key(log_key),
            t=io_type.value,
            p=partial,
        )
        return bool(rows)

    def _upload_file_obj(
        self, data: IO[bytes], log_key: Sequence[str], io_type: ComputeIOType, partial=False
    ):
        content = data.read()
        statements = [
            (
                f"INSERT INTO {TABLE} (log_key, io_type, partial, data, updated_at) "
                "VALUES (:k, :t, :p, :d, now()) ON CONFLICT (log_key, io_type, partial) "
                "DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                {"k": _key(log_key), "t": io_type.value, "p": partial, "d": content},
            )
        ]
        if not partial:  # the complete copy supersedes the running one
            statements.append(
                (
                    f"DELETE FROM {TABLE} WHERE log_key = :k AND io_type = :t AND partial",
                    {"k": _key(log_key), "t": io_type.value},
                )
            )
        try:
            self._transaction(statements)
        except Exception as exc:
            if not partial:
                raise
            # A partial upload is a preview; the final upload still follows. The error is only
            # its class and message (never the statement's data or the connection settings).
            logger.warning("compute logs: partial upload of %s failed: %s", _key(log_key),
                           type(exc).__name__)  # fmt: skip

    # Hooks the base class gives a default for

    def upload_to_cloud_storage(
        self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
    ) -> None:
        # The base class skips every upload after the first truncated one, so a file truncated
        # while the step ran would never get its complete row, and every other host would wait
        # for the step forever. The truncated partial copy is the final content: promote it.
        if not partial and (tuple(log_key), io_type) in truncated_logs(self):
            self._execute(
                f"UPDATE {TABLE} SET partial = false, updated_at = now() "
                "WHERE log_key = :k AND io_type = :t AND partial",
                k=_key(log_key),
                t=io_type.value,
            )
            return
        super().upload_to_cloud_storage(log_key, io_type, partial=partial)

    def download_from_cloud_storage(
        self, log_key: Sequence[str], io_type: ComputeIOType, partial: bool = False
    ) -> None:
        rows = self._fetch(
            f"SELECT data FROM {TABLE} WHERE log_key = :k AND io_type = :t AND partial = :p",
            k=_key(log_key),
            t=io_type.value,
            p=partial,
        )
        if not rows:
            return
        path = self.local_manager.get_captured_local_path(
            log_key, IO_TYPE_EXTENSION[io_type], partial=partial
        )
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Written aside and renamed, so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".download-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(rows[0][0]))
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise

    def get_log_keys_for_log_key_prefix(
        self, log_key_prefix: Sequence[str], io_type: ComputeIOType
    ) -> Sequence[list[str]]:
        prefix = _key(log_key_prefix) + "/"
        rows = self._fetch(
            f"SELECT DISTINCT log_key FROM {TABLE} WHERE starts_with(log_key, :p) AND io_type = :t",
            p=prefix,
            t=io_type.value,
        )
        keys = {row[0][len(prefix) :] for row in rows}
        try:  # a step still running on this host has only its local files
            keys.update(k[-1] for k in self.local_manager.get_log_keys_for_log_key_prefix(
                log_key_prefix, io_type))  # fmt: skip
        except OSError:
            pass
        return [[*log_key_prefix, k] for k in sorted(keys) if "/" not in k]

    def on_subscribe(self, subscription: CapturedLogSubscription) -> None:
        self._subscription_manager.add_subscription(subscription)

    def on_unsubscribe(self, subscription: CapturedLogSubscription) -> None:
        self._subscription_manager.remove_subscription(subscription)

    def dispose(self) -> None:
        self._subscription_manager.dispose()
        if self._local_manager is not None:
            self._local_manager.dispose()
        if self._engine is not None:
            self._engine.dispose()

    # PostgreSQL

    def _instance_or_none(self):
        return instance_of(self)

    def _url(self) -> str:
        if self._postgres_url:
            return self._postgres_url
        instance = self._instance_or_none()
        url = getattr(instance.run_storage, "postgres_url", None) if instance else None
        if not url:
            raise ComputeLogConfigError(
                "PostgresComputeLogManager has no database: dagster.yaml's compute_logs.config "
                "sets neither postgres_db nor postgres_url, and the instance's run storage is not "
                "dagster-postgres. Fix: add a postgres_db block (platform/dagster.yaml's "
                "run_storage one) to compute_logs.config"
            )
        return url

    def _connect(self):
        from dagster_postgres.utils import retry_pg_connection_fn, retry_pg_creation_fn
        from sqlalchemy import create_engine, pool, text

        if self._engine is None:
            # NullPool as in dagster-postgres: safe across the forks of dagster-init and the run
            # workers. hide_parameters keeps log contents out of any error message.
            self._engine = create_engine(self._url(), poolclass=pool.NullPool, hide_parameters=True)
        if not self._table_ready:

            def create() -> None:
                with self._engine.begin() as conn:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CREATE_LOCK})
                    conn.execute(
                        text(
                            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                            "log_key text NOT NULL, io_type text NOT NULL, "
                            "partial boolean NOT NULL, data bytea NOT NULL, "
                            "updated_at timestamptz NOT NULL DEFAULT now(), "
                            "PRIMARY KEY (log_key, io_type, partial))"
                        )
                    )

            retry_pg_connection_fn(lambda: retry_pg_creation_fn(create))
            self._table_ready = True
        return self._engine, text, retry_pg_connection_fn

    def _transaction(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        engine, text, retry = self._connect()

        def run() -> None:
            with engine.begin() as conn:
                for sql, params in statements:
                    conn.execute(text(sql), params)

        retry(run)

    def _execute(self, sql: str, **params: Any) -> None:
        self._transaction([(sql, params)])

    def _fetch(self, sql: str, **params: Any) -> list[tuple]:
        engine, text, retry = self._connect()

        def run() -> list[tuple]:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql), params)]

        return retry(run)
