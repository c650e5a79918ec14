"""Every exception the utils raise on purpose, in one place.

One contract: a util either returns a plain result or raises one of these, with a message that
names what failed and the fix. The one exception to it is `pyairbyte_sync.sync_connector`, which
keeps the guide's result dict and reports these errors in its `error` field.

Bad arguments (an empty table list, an identifier PostgreSQL cannot hold) still raise the usual
`ValueError` / `TypeError`: they are mistakes in the calling code, not failures of a service.
Several classes also derive from the builtin that their callers caught before this module existed
(`ValueError`, `LookupError`, `RuntimeError`), so an `except LookupError` keeps working.

    PyAirbyteUtilsError
    ├── SettingsError (ValueError)            a bad env value; names the variable and the fix
    ├── ConnectorConfigError (ValueError)     a bad connector YAML; names file, field and fix
    ├── YamlFileError (ValueError)            a YAML file that cannot be read within the limits
    ├── SyncError (RuntimeError)              a PyAirbyte sync the user can act on
    │   ├── SyncLimitExceededError            the sync ran past SYNC_MAX_SECONDS / _RECORDS
    │   └── ConnectorStartupError             the connector process exited before it said anything
    ├── GraphQLUtilError
    │   ├── GraphQLRequestError               HTTP failed (unreachable, 4xx, 5xx, not JSON)
    │   │   └── GraphQLTimeoutError           no response within the timeout
    │   └── GraphQLQueryError                 a 200 response with GraphQL `errors`
    ├── EventStoreError                       the event store's database failed
    │   └── EventNotFoundError (LookupError)
    ├── ApiCallError                          an event's HTTP call failed (recorded on the event)
    ├── DatabaseSyncError                     table copies (mysql_sync, mssql_sync) failed
    │   ├── UnsupportedTypeError (ValueError) a source column type with no mapping
    │   ├── SourceTableNotFoundError (LookupError)
    │   └── TableReplaceError                 the target table could not be swapped
    ├── DBBridgeError (RuntimeError)          the DuckDB -> PostgreSQL copy failed
    └── CacheError
        ├── CacheLoadError (RuntimeError)     a staged value PostgreSQL rejected
        ├── CacheCleanupError                 dropping a connector's cache tables failed
        ├── UnsupportedAirbyteVersionError (RuntimeError)
        └── ConnectorStateError               reading or resetting a connector's sync state
            ├── UnknownConnectorError (LookupError)
            └── UnknownStreamError (LookupError)

(dbt's `DbtManifestError` is dataplatform.dbt.manifest's: the utils never run dbt.)

This module imports nothing heavy, so code servers can catch these without loading drivers.
"""

from __future__ import annotations

from pathlib import Path


class PyAirbyteUtilsError(Exception):
    """Base class of every error the pyairbyte utils raise on purpose."""


class SettingsError(PyAirbyteUtilsError, ValueError):
    """An environment variable holds a value the settings layer cannot use."""


class ConnectorConfigError(PyAirbyteUtilsError, ValueError):
    """A connector YAML is invalid. The message names the file, the field and the fix."""

    def __init__(self, path: Path | str, field_name: str, problem: str, fix: str):
        self.path = str(path)
        self.field = field_name
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: field '{field_name}': {problem}. Fix: {fix}")


class YamlFileError(PyAirbyteUtilsError, ValueError):
    """A user's YAML file is unreadable: missing, not UTF-8, too large, an alias bomb, bad syntax.

    The message names the file, the problem and the fix, and never quotes the file's text.
    """

    def __init__(self, path: Path | str, problem: str, fix: str):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path} {problem}. Fix: {fix}")


class SyncError(PyAirbyteUtilsError, RuntimeError):
    """A sync failed for a reason the user can act on (the message says which)."""


class SyncLimitExceededError(SyncError):
    """A sync ran past its time or record limit; what it read was rolled back.

    `limit` is "max_seconds" or "max_records", `value` the limit, and `setting` the env var
    (or keyword argument of `sync_connector`) that raises it.
    """

    def __init__(self, message: str, *, limit: str, value: float, setting: str):
        super().__init__(message)
        self.limit = limit
        self.value = value
        self.setting = setting


class ConnectorStartupError(SyncError):
    """A connector process exited before it wrote a single Airbyte message: it crashed starting.

    Not a config problem: the connector never got as far as reading its config. `exit_code` is
    the process's, `stderr_log` the file its traceback went to, and `import_failure` says whether
    that traceback is an import-time failure (the usual sign of a Python too new for its CDK).
    """

    def __init__(
        self, message: str, *, exit_code: int, stderr_log: Path | None, import_failure: bool
    ):
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr_log = stderr_log
        self.import_failure = import_failure


# --- GraphQL ---------------------------------------------------------------------------------


class GraphQLUtilError(PyAirbyteUtilsError):
    """Base class of the errors raised by graphql_util.query_graphql_api."""


class GraphQLRequestError(GraphQLUtilError):
    """The HTTP request failed (unreachable, 4xx, 5xx after retries, or not JSON)."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class GraphQLTimeoutError(GraphQLRequestError):
    """No response within the timeout."""


class GraphQLQueryError(GraphQLUtilError):
    """The server answered, but the response has GraphQL `errors`."""

    def __init__(self, errors: list, data=None):
        messages = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
        )
        super().__init__(f"GraphQL query failed: {messages}")
        self.errors = errors
        self.data = data


# --- events ----------------------------------------------------------------------------------


class EventStoreError(PyAirbyteUtilsError):
    """The event store's database failed.

    For bulk writes, `events_created` and `batches` count what was committed before the failure
    (those batches stay; rerunning is safe, since duplicates are skipped).
    """

    def __init__(self, message: str, *, events_created: int = 0, batches: int = 0):
        super().__init__(message)
        self.events_created = events_created
        self.batches = batches


class EventNotFoundError(EventStoreError, LookupError):
    """No event with this id exists."""


class ApiCallError(PyAirbyteUtilsError):
    """The HTTP call for an event failed (HTTP error, timeout, unreachable).

    The failure is already recorded on the event (status failed), so a handler can go on with
    the next event; the event is retried by a later run.
    """

    def __init__(
        self,
        message: str,
        *,
        event_id: int,
        status_code: int | None = None,
        response: str | None = None,
        attempts: int = 0,
    ):
        super().__init__(message)
        self.event_id = event_id
        self.status_code = status_code
        self.response = response
        self.attempts = attempts


# --- table copies ----------------------------------------------------------------------------


class DatabaseSyncError(PyAirbyteUtilsError):
    """Copying tables into PostgreSQL failed for at least one table.

    Raised after every table was attempted: `rows` holds the tables that were copied, and
    `failed_tables` maps each failed table ("*" for the PostgreSQL connection) to its error.
    """

    def __init__(
        self,
        message: str,
        *,
        rows: dict[str, int] | None = None,
        failed_tables: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.rows = dict(rows or {})
        self.failed_tables = dict(failed_tables or {})


class UnsupportedTypeError(DatabaseSyncError, ValueError):
    """A source column type the database syncs do not map; the message names the column."""


class SourceTableNotFoundError(DatabaseSyncError, LookupError):
    """A table to copy does not exist in the source database."""


class TableReplaceError(DatabaseSyncError):
    """The copied rows could not replace the target table (e.g. dependent views)."""


class DBBridgeError(PyAirbyteUtilsError, RuntimeError):
    """Copying a DuckDB cache table into PostgreSQL failed; the message says why."""


# --- the PostgreSQL cache --------------------------------------------------------------------


class CacheError(PyAirbyteUtilsError):
    """Base class of the PostgreSQL cache's errors."""


class CacheLoadError(CacheError, RuntimeError):
    """Staged records could not be loaded; nothing was written for the stream."""


class CacheCleanupError(CacheError):
    """Dropping a connector's cache tables failed; nothing was dropped (one transaction)."""


class UnsupportedAirbyteVersionError(CacheError, RuntimeError):
    """The installed `airbyte` package is not the version the lossless cache was built for."""


class ConnectorStateError(CacheError):
    """A connector's PyAirbyte state could not be read or reset; a reset changed nothing."""


class UnknownConnectorError(ConnectorStateError, LookupError):
    """No connector YAML, code location or stored state has this name; the message lists them."""


class UnknownStreamError(ConnectorStateError, LookupError):
    """The connector has no stream of this name; the message lists the streams it has."""
