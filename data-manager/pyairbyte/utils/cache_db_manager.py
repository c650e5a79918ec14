"""Manage the PostgreSQL cache: list schemas and tables, sizes and row counts, clean up.

`PyAirbyteCacheDBManager(schema=None)` works on one cache schema (env CACHE_SCHEMA, default
`pyairbyte_cache`, as `common_cache` uses); `PyAirbyteCacheDBManager.for_cache("sweden")` takes
connection and schema from `common_cache.CACHE_CONFIGS`.

Every identifier goes into SQL through `psycopg2.sql.Identifier`, and names are matched with
bound parameters (never LIKE, where `_` is a wildcard), so a table called
`x"; drop schema ...` is just a table name.

`cleanup_connector_tables(connector_name)` drops the tables of one connector, i.e. those with
the table prefix `get_cache(..., connector_name)` gives them (`next-erp` -> `next_erp_`), and
deletes their rows from PyAirbyte's `_airbyte_state` / `_airbyte_streams`, so the next sync
starts from scratch instead of resuming an incremental state for tables that are gone. All in
one transaction: it returns a `CleanupResult`, or raises `pyairbyte.errors.CacheCleanupError`
(e.g. views depend on a table) and drops nothing.

| env var       | default          |
|---------------|------------------|
| CACHE_SCHEMA  | pyairbyte_cache  |
| POSTGRES_*    | see pyairbyte.settings |
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import psycopg2
from psycopg2 import sql

from pyairbyte import settings
from pyairbyte.errors import CacheCleanupError
from pyairbyte.utils import pg
from pyairbyte.utils.pg_copy import check_identifier, ensure_schema

# PyAirbyte's bookkeeping tables; never dropped by a prefix cleanup.
AIRBYTE_INTERNAL_TABLES = ("_airbyte_state", "_airbyte_streams", "_airbyte_destination_state")
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


@dataclass(frozen=True)
class CleanupResult:
    schema: str
    prefix: str
    tables_dropped: list[str]
    state_rows_deleted: int
    dry_run: bool


class PyAirbyteCacheDBManager:
    def __init__(self, schema: str | None = None, connection_kwargs: dict | None = None):
        """`connection_kwargs` are psycopg2.connect() arguments (default: POSTGRES_*)."""
        self.schema = check_identifier(schema or settings.cache_schema(), "schema")
        self._connection_kwargs = connection_kwargs

    @classmethod
    def for_cache(cls, cache_name: str = "default") -> PyAirbyteCacheDBManager:
        """A manager for one of common_cache's named caches (its database and schema)."""
        from pyairbyte.utils.common_cache import CACHE_CONFIGS

        config = CACHE_CONFIGS[cache_name]
        return cls(schema=config["schema_name"], connection_kwargs=pg.params_from_cache(config))

    @contextmanager
    def _cursor(self):
        with pg.cursor(self._connection_kwargs) as cur:
            yield cur

    def _schema(self, schema: str | None) -> str:
        return check_identifier(schema, "schema") if schema else self.schema

    # --- listing ---------------------------------------------------------------------------

    def list_schemas(self, include_system: bool = False) -> list[str]:
        with self._cursor() as cur:
            cur.execute("select nspname from pg_namespace order by nspname")
            names = [r[0] for r in cur.fetchall()]
        if include_system:
            return names
        return [
            n
            for n in names
            if n not in _SYSTEM_SCHEMAS
            and not n.startswith("pg_temp_")
            and not n.startswith("pg_toast_temp_")
        ]

    def schema_exists(self, schema: str | None = None) -> bool:
        with self._cursor() as cur:
            cur.execute("select 1 from pg_namespace where nspname = %s", (self._schema(schema),))
            return cur.fetchone() is not None

    def create_schema(self, schema: str | None = None) -> None:
        conn = pg.connect(self._connection_kwargs)
        try:
            ensure_schema(conn, self._schema(schema))
        finally:
            conn.close()

    def list_tables(self, schema: str | None = None) -> list[str]:
        """Ordinary and partitioned tables in the schema, sorted."""
        with self._cursor() as cur:
            cur.execute(
                "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relkind in ('r', 'p') order by c.relname",
                (self._schema(schema),),
            )
            return [r[0] for r in cur.fetchall()]

    def table_exists(self, table: str, schema: str | None = None) -> bool:
        return table in self.list_tables(schema)

    def tables_with_prefix(self, prefix: str, schema: str | None = None) -> list[str]:
        """Tables whose name starts with `prefix` (a plain string match, no wildcards)."""
        if not prefix:
            raise ValueError("prefix must be a non-empty string; an empty one matches every table")
        return [
            t
            for t in self.list_tables(schema)
            if t.startswith(prefix) and t not in AIRBYTE_INTERNAL_TABLES
        ]

    # --- sizes and counts ------------------------------------------------------------------

    def get_row_count(self, table: str, schema: str | None = None) -> int:
        """Exact row count (count(*))."""
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("select count(*) from {}").format(
                    sql.Identifier(self._schema(schema), table)
                )
            )
            return cur.fetchone()[0]

    def get_table_size(self, table: str, schema: str | None = None) -> int:
        """Bytes on disk including indexes and TOAST."""
        with self._cursor() as cur:
            cur.execute(
                "select pg_total_relation_size(%s::regclass)",
                (sql.Identifier(self._schema(schema), table).as_string(cur),),
            )
            return cur.fetchone()[0]

    def get_table_stats(self, schema: str | None = None) -> list[dict]:
        """[{table, rows, total_bytes, size}] for every table of the schema, largest first."""
        schema = self._schema(schema)
        stats = []
        for table in self.list_tables(schema):
            size = self.get_table_size(table, schema)
            stats.append(
                {
                    "table": table,
                    "rows": self.get_row_count(table, schema),
                    "total_bytes": size,
                    "size": _pretty(size),
                }
            )
        return sorted(stats, key=lambda s: (-s["total_bytes"], s["table"]))

    def get_schema_summary(self, schema: str | None = None) -> dict:
        stats = self.get_table_stats(schema)
        total = sum(s["total_bytes"] for s in stats)
        return {
            "schema": self._schema(schema),
            "tables": len(stats),
            "total_rows": sum(s["rows"] for s in stats),
            "total_bytes": total,
            "size": _pretty(total),
        }

    # --- changes ---------------------------------------------------------------------------

    def truncate_table(self, table: str, schema: str | None = None) -> None:
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("truncate table {}").format(sql.Identifier(self._schema(schema), table))
            )

    def drop_table(self, table: str, schema: str | None = None, cascade: bool = False) -> bool:
        """Drop the table if it exists; returns whether it existed. Views that depend on it
        make this fail unless cascade=True (which drops them too)."""
        schema = self._schema(schema)
        existed = self.table_exists(table, schema)
        with self._cursor() as cur:
            cur.execute(
                sql.SQL("drop table if exists {} {}").format(
                    sql.Identifier(schema, table), sql.SQL("cascade" if cascade else "restrict")
                )
            )
        return existed

    def cleanup_connector_tables(
        self,
        connector_name: str,
        schema: str | None = None,
        *,
        reset_state: bool = True,
        cascade: bool = False,
        dry_run: bool = False,
    ) -> CleanupResult:
        """Drop every table of one connector (by its cache table prefix). See the module doc."""
        from pyairbyte.utils.common_cache import table_prefix_for

        if not connector_name:
            raise ValueError("connector_name must be a non-empty string")
        return self.cleanup_tables_by_prefix(
            table_prefix_for(connector_name),
            schema,
            reset_state=reset_state,
            cascade=cascade,
            dry_run=dry_run,
        )

    def cleanup_tables_by_prefix(
        self,
        prefix: str,
        schema: str | None = None,
        *,
        reset_state: bool = True,
        cascade: bool = False,
        dry_run: bool = False,
    ) -> CleanupResult:
        """Drop tables named `prefix...` and (reset_state) their PyAirbyte state rows."""
        schema = self._schema(schema)
        tables = self.tables_with_prefix(prefix, schema)  # raises ValueError for an empty prefix
        state_rows_deleted = 0
        if not dry_run:
            present = set(self.list_tables(schema))
            try:
                with self._cursor() as cur:
                    for table in tables:
                        cur.execute(
                            sql.SQL("drop table {} {}").format(
                                sql.Identifier(schema, table),
                                sql.SQL("cascade" if cascade else "restrict"),
                            )
                        )
                    if reset_state:
                        for internal in ("_airbyte_state", "_airbyte_streams"):
                            if internal in present:
                                cur.execute(
                                    sql.SQL(
                                        "delete from {} where left(table_name, %s) = %s"
                                    ).format(sql.Identifier(schema, internal)),
                                    (len(prefix), prefix),
                                )
                                state_rows_deleted += cur.rowcount
            except psycopg2.Error as exc:
                detail = (getattr(exc.diag, "message_detail", None) or "").replace("\n", "; ")
                hint = " Fix: drop the dependent views, or pass cascade=True." if detail else ""
                raise CacheCleanupError(
                    f"cannot drop the tables {prefix}* in schema {schema}; nothing was dropped: "
                    f"{type(exc).__name__}: {str(exc).strip()}{hint}"
                ) from exc
        return CleanupResult(
            schema=schema,
            prefix=prefix,
            tables_dropped=tables,
            state_rows_deleted=state_rows_deleted,
            dry_run=dry_run,
        )


def _pretty(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"
