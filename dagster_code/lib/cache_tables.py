"""What a cache table holds right now: its row count and its columns, for asset metadata.

Framework-free, and cheap: one connection, one `count(*)` per table and one catalog query for all
columns. Reads the database the sync wrote to (POSTGRES_*, read when called).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CacheTableError(Exception):
    """A cache table could not be described (the database is unreachable, or the table is gone)."""


@dataclass(frozen=True)
class TableStats:
    table: str  # schema.table
    row_count: int
    columns: tuple[tuple[str, str], ...]  # (name, data type), in column order


def table_stats(tables: Sequence[str]) -> dict[str, TableStats]:
    """schema.table -> its stats, for each of `tables` that exists (a stream that emitted no
    records may have written no table)."""
    import psycopg2
    from psycopg2 import sql

    from pyairbyte.utils import pg

    if not tables:
        return {}
    pairs = [table.split(".", 1) for table in tables]
    try:
        connection = pg.connect()
    except psycopg2.Error as exc:
        raise CacheTableError(f"cannot connect to the cache database: {exc}".strip()) from exc
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_schema || '.' || table_name, column_name, data_type "
                "FROM information_schema.columns "
                "WHERE (table_schema, table_name) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[])) "
                "ORDER BY table_schema, table_name, ordinal_position",
                ([s for s, _ in pairs], [t for _, t in pairs]),
            )
            columns: dict[str, list[tuple[str, str]]] = {}
            for table, name, data_type in cursor.fetchall():
                columns.setdefault(table, []).append((name, data_type))
            stats = {}
            for table, (schema, name) in zip(tables, pairs, strict=True):
                if table not in columns:
                    continue
                cursor.execute(
                    sql.SQL("SELECT count(*) FROM {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(name)
                    )
                )
                stats[table] = TableStats(
                    table, cursor.fetchone()[0], tuple(columns.get(table, ()))
                )
    except psycopg2.Error as exc:
        raise CacheTableError(f"cannot describe cache tables {', '.join(tables)}: {exc}") from exc
    finally:
        connection.close()
    return stats
