"""Dagster resources through which the pattern locations reach their outside systems.

Each resource is configuration plus a thin call into a framework-free pyairbyte util, passing its
values as plain arguments. A location binds them with `dagster.EnvVar(...)`, so:
- loading a location needs none of the variables (an EnvVar resolves when a run launches);
- a missing variable fails the launch with its name, shown in the UI, instead of failing a step
  halfway through the run;
- a test passes another resource instance (`execute_in_process(resources=...)`).

A field left None falls back to the util's own default from `pyairbyte.settings` (e.g.
POSTGRES_*, GRAPHQL_TIMEOUT_SECONDS), which has a default value and so needs no EnvVar.

Heavy drivers stay lazy: the utils are imported inside the methods, not at module top level,
because code servers import this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource
from pydantic import Field

if TYPE_CHECKING:
    from airbyte.caches import PostgresCache

    from pyairbyte.utils.api_call import ApiCallResult
    from pyairbyte.utils.cache_db_manager import PyAirbyteCacheDBManager


class PostgresCacheResource(ConfigurableResource):
    """One of common_cache's named PostgreSQL caches, optionally with its settings overridden."""

    cache_name: str = Field("default", description="A name in pyairbyte's CACHE_CONFIGS")
    schema_name: str | None = Field(None, description="Cache schema; None: the named cache's")
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    database: str | None = None

    def _overrides(self) -> dict[str, Any]:
        values = {
            "schema_name": self.schema_name,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "database": self.database,
        }
        return {key: value for key, value in values.items() if value is not None}

    def config(self) -> dict[str, Any]:
        """The cache's connection settings and schema, as `common_cache.CACHE_CONFIGS` has them."""
        from pyairbyte.utils.common_cache import CACHE_CONFIGS

        return {**CACHE_CONFIGS[self.cache_name], **self._overrides()}

    def get_cache(self, connector_name: str | None = None) -> PostgresCache:
        from pyairbyte.utils.common_cache import get_cache

        return get_cache(self.cache_name, connector_name, overrides=self._overrides())

    def db_manager(self) -> PyAirbyteCacheDBManager:
        from pyairbyte.utils.cache_db_manager import PyAirbyteCacheDBManager
        from pyairbyte.utils.pg import params_from_cache

        config = self.config()
        return PyAirbyteCacheDBManager(
            schema=config["schema_name"], connection_kwargs=params_from_cache(config)
        )


class GraphQLResource(ConfigurableResource):
    """A Hasura-style GraphQL endpoint (pyairbyte.utils.graphql_util)."""

    endpoint: str = Field(description="e.g. http://hasura:8080/v1/graphql")
    admin_secret: str | None = Field(None, description="Sent as x-hasura-admin-secret if set")
    bearer_token: str | None = Field(None, description="Sent as a bearer token if no secret")
    timeout_seconds: float | None = None
    max_retries: int | None = None

    def query(self, query: str, variables: dict | None = None) -> dict:
        """The response JSON; raises pyairbyte.errors.GraphQLUtilError subclasses."""
        from pyairbyte.utils.graphql_util import query_graphql_api

        return query_graphql_api(
            query,
            variables,
            endpoint=self.endpoint,
            admin_secret=self.admin_secret,
            bearer_token=self.bearer_token,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
        )


class EventApiResource(ConfigurableResource):
    """An HTTP endpoint that events are sent to, each outcome recorded on its event."""

    url: str = Field(description="The URL each event's data is sent to")
    method: str = "POST"
    timeout_seconds: float | None = None

    def send(self, event_id: int, body: Any) -> ApiCallResult:
        """Raises pyairbyte.errors.ApiCallError after recording a failed call on the event."""
        from pyairbyte.utils.api_call import call_api_for_event_processing

        return call_api_for_event_processing(
            event_id, self.method, self.url, body, timeout=self.timeout_seconds
        )


class MySqlSourceResource(ConfigurableResource):
    """A MariaDB/MySQL database whose tables are copied into the PostgreSQL cache."""

    host: str = Field(description="e.g. mariadb.example.com")
    database: str = Field(description="The database the tables are read from")
    tables: str = Field(description="Comma-separated table names, e.g. customers,orders")
    port: int | None = None
    user: str | None = None
    password: str | None = None
    batch_size: int | None = None
    cache_schema: str | None = Field(
        None, description="Target schema; None: MYSQL_SYNC_CACHE_SCHEMA"
    )
    table_prefix: str | None = Field(
        None, description="Target prefix; None: MYSQL_SYNC_TABLE_PREFIX"
    )

    def table_list(self) -> list[str]:
        return [t.strip() for t in self.tables.split(",") if t.strip()]

    def target(self) -> tuple[str, str]:
        """(cache schema, table prefix) the copies are written to."""
        from pyairbyte import settings

        defaults = settings.mysql_sync_target()
        schema = self.cache_schema or defaults.cache_schema
        prefix = defaults.table_prefix if self.table_prefix is None else self.table_prefix
        return schema, prefix

    def copy_tables(self) -> dict[str, int]:
        """{table: rows}; raises pyairbyte.errors.DatabaseSyncError naming each failed table."""
        from pyairbyte.utils.mysql_sync import sync_mysql_tables

        cache_schema, table_prefix = self.target()
        return sync_mysql_tables(
            server=self.host,
            database=self.database,
            tables=self.table_list(),
            cache_schema=cache_schema,
            port=self.port,
            user=self.user,
            password=self.password,
            table_prefix=table_prefix,
            batch_size=self.batch_size,
        )
