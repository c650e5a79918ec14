"""What a cache table looks like in PostgreSQL: its columns and its stored column map.

The cache (`pyairbyte.utils.column_names`) gives every property of a stream its own column and
records the choice in `<schema>._dataplatform_column_map`; a sync may later add columns (new or
undeclared properties), widen them, or move a property to a typed sibling column
(`price_jsonb`). The dbt codegen (`connector add`, `connector refresh-staging`) and the doctor read
the table through here, so they agree on which columns a staging model should select.

The database is found the way `dataplatform check` finds it: POSTGRES_*, or without
POSTGRES_HOST the running local platform's private cluster. Everything here only reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyairbyte import settings
from pyairbyte.utils import column_names
from pyairbyte.utils import pg as pg_connection

_COLUMNS_SQL = """
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = to_regclass(%(name)s) AND attnum > 0 AND NOT attisdropped
ORDER BY attnum
"""
# Every row of the map for one table, oldest first (the newest row per property is current).
_MAP_ROWS_SQL = """
SELECT property, sql_type, column_name FROM {schema}.{map_table}
WHERE table_name = %(table)s ORDER BY added_at, column_name
"""


@dataclass(frozen=True)
class CacheTable:
    """One cache table as PostgreSQL has it now (empty `columns`: it does not exist)."""

    schema: str
    name: str
    columns: dict[str, str] = field(default_factory=dict)  # column -> type, in table order
    current: dict[str, tuple[str, str]] = field(default_factory=dict)  # read_column_map
    map_rows: list[tuple[str, str, str]] = field(default_factory=list)  # (prop, type, column)

    @property
    def exists(self) -> bool:
        return bool(self.columns)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_map(self) -> dict[str, str]:
        """property -> its current column."""
        return {prop: column for prop, (column, _) in self.current.items()}

    @property
    def mapped_columns(self) -> set[str]:
        """Every column the map names, current or not."""
        return {column for _, _, column in self.map_rows} | set(self.column_map.values())

    def stale_columns(self) -> dict[str, tuple[str, str]]:
        """column -> (property, its current column) for columns that held a property before a
        typed sibling took over: still in the table, but no longer where new values go."""
        current = set(self.column_map.values())
        return {
            column: (prop, self.current[prop][0])
            for prop, _, column in self.map_rows
            if column not in current and prop in self.current
        }

    def data_columns(self) -> list[str]:
        """The columns a staging model should select, in table order: every column but the
        platform's `_airbyte_*` ones and those a sibling replaced."""
        stale = self.stale_columns()
        return [
            c for c in self.columns if c not in column_names.PLATFORM_COLUMNS and c not in stale
        ]


def read_cache_table(cursor, schema: str, table: str) -> CacheTable:
    """`schema.table` and its stored column map; `cursor` is a DBAPI cursor (psycopg2)."""
    cursor.execute(
        _COLUMNS_SQL, {"name": f"{column_names.quote(schema)}.{column_names.quote(table)}"}
    )
    columns = {name: sql_type for name, sql_type in cursor.fetchall()}
    current = column_names.read_column_map(cursor, schema, table)
    rows: list[tuple[str, str, str]] = []
    if current:  # the map table exists and holds rows for this table
        cursor.execute(column_names.map_sql(_MAP_ROWS_SQL, schema), {"table": table})
        rows = [tuple(row) for row in cursor.fetchall()]
    return CacheTable(schema, table, columns, current, rows)


def postgres() -> settings.PostgresSettings:
    """POSTGRES_*; without POSTGRES_HOST, the running local platform's private cluster if any."""
    from dataplatform.local.platform import running_private_postgres

    local = running_private_postgres()
    if local is None:
        return settings.postgres_settings()
    return settings.PostgresSettings(
        host=local["POSTGRES_HOST"],
        port=int(local["POSTGRES_PORT"]),
        user=local["POSTGRES_USER"],
        password=local["POSTGRES_PASSWORD"],
        db=local["POSTGRES_DB"],
    )


def connect(pg: settings.PostgresSettings):
    """A connection, or the first line of why there is none."""
    import psycopg2

    try:
        return pg_connection.connect(pg.psycopg2_kwargs(), connect_timeout=3)
    except psycopg2.OperationalError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"


def describe(pg: settings.PostgresSettings) -> str:
    return f"PostgreSQL {pg.host}:{pg.port}/{pg.dbname}"


def read_cache_tables(
    tables: list[tuple[str, str]],
) -> tuple[dict[tuple[str, str], CacheTable] | None, str]:
    """((schema, table) -> CacheTable, "") for each of `tables`, read in one read-only session;
    (None, why) when PostgreSQL is not reachable."""
    pg = postgres()
    conn = connect(pg)
    if isinstance(conn, str):
        return None, f"{describe(pg)} is not reachable ({conn})"
    try:
        conn.set_session(readonly=True, autocommit=False)
        with conn.cursor() as cur:
            found = {(s, t): read_cache_table(cur, s, t) for s, t in tables}
        conn.rollback()
        return found, ""
    finally:
        conn.close()
