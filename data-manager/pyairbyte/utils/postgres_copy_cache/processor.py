"""A PostgreSQL SQL processor that loads PyAirbyte's staged JSONL with COPY, losslessly.

How a stream gets into PostgreSQL (PyAirbyte's `write_stream_data` drives the steps; this class
replaces the ones that lose data or are slow):

1. PyAirbyte stages records as gzipped JSONL files (unchanged).
2. Loading table, in ONE transaction (background_load.py), started as soon as the stream's first
   staged file is closed and fed file by file while the source is still being read; the last
   files and the commit happen in `_write_files_to_new_table`:
   - create the loading table `<stream>_<batch>` with the exact column types (types.py);
   - stream each file, still gzipped on disk, into a one-column temp table with COPY. Python
     never parses a record: the JSON text goes to the server as is, so no string is re-typed
     (pandas turned "000001" into 1) and no number goes through a float;
   - INSERT ... SELECT into the loading table, taking each field out of the line as jsonb and
     casting it to the column type in the server (`->>` returns strings verbatim; numbers keep
     their exact decimal text; date-times keep their instant).
   A bad value rolls the whole transaction back and raises `CacheLoadError` naming the stream,
   the field and the value's problem; a failed read rolls it back too (`CopyPostgresCache`).
3. `_write_temp_table_to_final_table` (PyAirbyte) applies the write method, each in one
   transaction, so a failure leaves the final table as it was:
   - replace: rename swap when the final table is plain (no views, indexes, grants, ...),
     otherwise TRUNCATE + INSERT, which keeps the table object -- a rename swap would leave dbt's
     staging views on the old table, the DROP would fail, and grants/indexes would be lost;
   - append: INSERT ... SELECT;
   - merge: drop duplicate keys inside the batch (last emitted wins), UPDATE matching rows,
     INSERT the rest;
   - append and merge into a final table that is still empty and plain (a first load) rename-
     swap instead of copying every row again.

Memory stays flat: files are streamed in 1 MiB chunks and the server does the parsing.
"""

from __future__ import annotations

import functools
import logging
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from airbyte._processors.sql.postgres import PostgresSqlProcessor
from airbyte._util.name_normalizers import LowerCaseNormalizer
from airbyte.constants import AB_INTERNAL_COLUMNS
from sqlalchemy import text

from pyairbyte.utils.postgres_copy_cache.background_load import STAGE_TABLE, BackgroundLoad
from pyairbyte.utils.postgres_copy_cache.load_errors import explain_load_error
from pyairbyte.utils.postgres_copy_cache.staging import FastJsonlWriter
from pyairbyte.utils.postgres_copy_cache.types import LosslessPostgresTypeConverter, pg_type_sql

if TYPE_CHECKING:
    from airbyte._batch_handles import BatchHandle
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# Streams loading in the background at once, each holding a pooled connection during the read
# (SQLAlchemy's default pool has 5 + 10 overflow). Further streams load when the read ends.
_MAX_BACKGROUND_LOADS = 4


_COLUMN_TYPES_SQL = """
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = to_regclass(:name) AND attnum > 0 AND NOT attisdropped
"""

# Column types the stock PostgresCache creates where this cache creates exact ones.
_LOSSY_LEGACY_TYPES = {"json", "timestamp without time zone", "numeric(38,9)"}

# True when nothing but PyAirbyte's own definition hangs off the table: no views (dbt staging
# models) reading it, no indexes, triggers, rules, grants, constraints or comment. Only then may
# a write replace the table object itself (rename swap); otherwise it must keep the object and
# change its rows, or it would break the views and drop what users attached.
_IS_PLAIN_TABLE_SQL = """
SELECT c.relkind = 'r'
   AND NOT c.relhasindex AND NOT c.relhastriggers AND NOT c.relhasrules
   AND c.relacl IS NULL
   AND obj_description(c.oid, 'pg_class') IS NULL
   AND NOT EXISTS (
       SELECT 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
       WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = c.oid AND r.ev_class <> c.oid)
   AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid OR confrelid = c.oid)
FROM pg_class c
WHERE c.oid = to_regclass(:name)
"""

_COLUMN_SIGNATURE_SQL = """
SELECT array_agg(attname || ' ' || format_type(atttypid, atttypmod) ORDER BY attnum)
FROM pg_attribute
WHERE attrelid = to_regclass(:name) AND attnum > 0 AND NOT attisdropped
"""


class CopyPostgresSqlProcessor(PostgresSqlProcessor):
    """PyAirbyte's Postgres processor with COPY loading, exact types and atomic write methods."""

    type_converter_class = LosslessPostgresTypeConverter
    file_writer_class = FastJsonlWriter

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # stream name -> its load, started when the stream's first staged file was closed
        self._background_loads: dict[str, BackgroundLoad] = {}
        if isinstance(self.file_writer, FastJsonlWriter):
            self.file_writer.on_batch_closed = self._load_in_background
        # A processor dropped after a failed read must not leave open transactions behind.
        weakref.finalize(self, _abort_all, self._background_loads)

    def abort_background_loads(self) -> None:
        """Roll back every load still pending (after a failed read): nothing becomes visible."""
        _abort_all(self._background_loads)

    # ---- DDL with PostgreSQL-compiled types ----------------------------------------------------

    def _column_definitions_sql(self, stream_name: str) -> str:
        return ",\n  ".join(
            f"{self._quote_identifier(column)} {pg_type_sql(sql_type)}"
            for column, sql_type in self._get_sql_column_definitions(stream_name).items()
        )

    def _ensure_final_table_exists(
        self,
        stream_name: str,
        *,
        create_if_missing: bool = True,
    ) -> str:
        table_name = self.get_sql_table_name(stream_name)
        if create_if_missing and not self._table_exists(table_name):
            self._create_table(table_name, self._column_definitions_sql(stream_name))
        return table_name

    def _table_exists(self, table_name: str) -> bool:
        # One catalog lookup instead of SQLAlchemy's inspector listing every table.
        with self.get_sql_connection() as connection:
            return connection.execute(
                text("SELECT to_regclass(:name) IS NOT NULL"),
                {"name": self._fully_qualified(table_name)},
            ).scalar()

    def _existing_columns(self, table_name: str) -> dict[str, str]:
        """column name -> type (as PostgreSQL's format_type prints it) of an existing table."""
        name = self._fully_qualified(table_name)
        with self.get_sql_connection() as connection:
            return dict(connection.execute(text(_COLUMN_TYPES_SQL), {"name": name}).all())

    def _add_missing_columns_to_table(self, stream_name: str, table_name: str) -> None:
        # Same result as PyAirbyte's version, without reflecting the whole table through
        # SQLAlchemy (0.3 s per stream, most of a small sync's cache step).
        existing = self._existing_columns(table_name)
        expected = self._get_sql_column_definitions(stream_name)
        for column, sql_type in expected.items():
            if column not in existing:
                self._execute_sql(
                    f"ALTER TABLE {self._fully_qualified(table_name)} "
                    f"ADD COLUMN {self._quote_identifier(column)} {pg_type_sql(sql_type)}"
                )
        self._warn_about_lossy_legacy_columns(table_name, existing, expected)
        self._invalidate_table_cache(table_name)

    def _warn_about_lossy_legacy_columns(
        self,
        table_name: str,
        existing: dict[str, str],
        expected: dict[str, sqlalchemy.types.TypeEngine],
    ) -> None:
        """A table the stock PostgresCache created keeps its lossy column types: say so.

        Appending or merging into it still works (values are cast on insert), but a
        timestamp column drops offsets and numeric(38,9) rounds. Changing the types in place
        would fail on dependent views and rewrite the table, so this only warns.
        """
        legacy = {
            column: (existing[column], pg_type_sql(sql_type))
            for column, sql_type in expected.items()
            if existing.get(column) in _LOSSY_LEGACY_TYPES
            and pg_type_sql(sql_type) != existing[column].upper()
        }
        if legacy:
            found = ", ".join(f"{c} is {old} (not {new})" for c, (old, new) in legacy.items())
            log.warning(
                "%s.%s was created by PyAirbyte's stock PostgresCache: %s. Rows still load, but "
                "lose precision in these columns. Fix: run one sync with "
                "write_strategy='replace' (or drop the table) to recreate it with exact types.",
                self.sql_config.schema_name,
                table_name,
                found,
            )

    def _init_connection_settings(self, connection: Connection) -> None:
        # Date-times without an offset mean UTC, and timestamptz -> timestamp casts (into a
        # table the stock cache created) are done in UTC too, whatever the server's default.
        connection.execute(text("SET TIME ZONE 'UTC'"))

    def _add_column_to_table(
        self,
        table: Table,
        column_name: str,
        column_type: sqlalchemy.types.TypeEngine,
    ) -> None:
        self._execute_sql(
            f"ALTER TABLE {self._fully_qualified(table.name)} "
            f"ADD COLUMN {self._quote_identifier(column_name)} {pg_type_sql(column_type)}"
        )

    # ---- Loading staged files ------------------------------------------------------------------

    def _load_columns(self, stream_name: str) -> list[tuple[str, str, sqlalchemy.types.TypeEngine]]:
        """(column name, key in the staged JSON, SQL type) for every column of the stream.

        PyAirbyte stages records with LowerCaseNormalizer keys, while column names also get
        PostgreSQL's 63-character limit, so the two can differ for long property names.
        """
        json_key_of_column = {
            self.normalizer.normalize(prop): LowerCaseNormalizer.normalize(prop)
            for prop in self.catalog_provider.get_stream_properties(stream_name)
        }
        json_key_of_column.update({column: column for column in AB_INTERNAL_COLUMNS})
        return [
            (column, json_key_of_column[column], sql_type)
            for column, sql_type in self._get_sql_column_definitions(stream_name).items()
        ]

    @staticmethod
    def _value_sql(json_key: str, sql_type: sqlalchemy.types.TypeEngine) -> str:
        """SQL taking one field out of the staged record `j` (jsonb) as `sql_type`."""
        key = "'" + json_key.replace("'", "''") + "'"
        if isinstance(sql_type, sqlalchemy.types.JSON):
            # `->` gives jsonb; a JSON null becomes SQL NULL like every other column's.
            return f"NULLIF(j -> {key}, 'null'::jsonb)"
        if isinstance(sql_type, sqlalchemy.types.String):
            # `->>` returns the string exactly as sent (a number or object as its JSON text).
            return f"(j ->> {key})"
        if isinstance(sql_type, sqlalchemy.types.Integer):
            # A whole number written as 7.0 or 1e3 is still that integer; a fraction (1.5) goes
            # to the text cast, which fails naming the value instead of rounding it.
            number = f"(j -> {key})::numeric"
            return (
                f"CASE WHEN jsonb_typeof(j -> {key}) = 'number' AND {number} = trunc({number}) "
                f"THEN {number}::{pg_type_sql(sql_type)} "
                f"ELSE (j ->> {key})::{pg_type_sql(sql_type)} END"
            )
        return f"(j ->> {key})::{pg_type_sql(sql_type)}"

    def _start_load(self, stream_name: str, batch_id: str) -> BackgroundLoad:
        table_name = self._get_temp_table_name(stream_name, batch_id)
        columns = self._load_columns(stream_name)
        insert_sql = (
            f"INSERT INTO {self._fully_qualified(table_name)} ("
            + ", ".join(self._quote_identifier(column) for column, _, _ in columns)
            + ")\nSELECT "
            + ",\n  ".join(self._value_sql(key, sql_type) for _, key, sql_type in columns)
            # OFFSET 0 keeps the subquery from being flattened: without it the line is parsed
            # to jsonb once per column instead of once per row (10x slower).
            + f"\nFROM (SELECT line::jsonb AS j FROM {STAGE_TABLE} OFFSET 0) AS staged"
        )
        connection = self.get_sql_engine().raw_connection()
        if connection.driver_connection.encoding != "UTF8":
            # Staged files are UTF-8; COPY must not transcode them as another encoding.
            connection.driver_connection.set_client_encoding("UTF8")
        return BackgroundLoad(
            connection=connection,
            table_name=table_name,
            create_table_sql=(
                f"CREATE TABLE {self._fully_qualified(table_name)} "
                f"(\n  {self._column_definitions_sql(stream_name)}\n)"
            ),
            insert_sql=insert_sql,
            explain_error=functools.partial(
                explain_load_error,
                schema_name=self.sql_config.schema_name,
                stream_name=stream_name,
                columns=columns,
            ),
        )

    def _load_in_background(self, batch_handle: BatchHandle) -> None:
        """Called by the writer whenever it closes a staged file during the read."""
        stream_name = batch_handle.stream_name
        load = self._background_loads.get(stream_name)
        if load is None:
            if len(self._background_loads) >= _MAX_BACKGROUND_LOADS:
                return  # loaded with the rest when the read ends
            load = self._start_load(stream_name, batch_handle.batch_id)
            self._background_loads[stream_name] = load
        load.submit(batch_handle.files)

    def _write_files_to_new_table(
        self,
        files: list[Path],
        stream_name: str,
        batch_id: str,
    ) -> str:
        """Load whatever is not loaded yet, commit, and return the loading table's name."""
        load = self._background_loads.pop(stream_name, None)
        if load is None:
            load = self._start_load(stream_name, batch_id)
        try:
            load.submit(files)
        except BaseException:
            load.abort()
            raise
        return load.finish()

    # ---- Write methods, each one transaction ---------------------------------------------------

    def _is_plain_table(self, connection: Connection, table: str) -> bool:
        return bool(connection.execute(text(_IS_PLAIN_TABLE_SQL), {"name": table}).scalar())

    def _same_columns(self, connection: Connection, table: str, other_table: str) -> bool:
        signatures = [
            connection.execute(text(_COLUMN_SIGNATURE_SQL), {"name": name}).scalar()
            for name in (table, other_table)
        ]
        return signatures[0] == signatures[1]

    def _rename_swap(
        self, connection: Connection, temp_table_name: str, final_table_name: str
    ) -> None:
        deletion_name = self.normalizer.normalize(f"{final_table_name}_deleteme")
        final_table = self._fully_qualified(final_table_name)
        connection.execute(
            text(f"ALTER TABLE {final_table} RENAME TO {self._quote_identifier(deletion_name)}")
        )
        connection.execute(
            text(
                f"ALTER TABLE {self._fully_qualified(temp_table_name)} "
                f"RENAME TO {self._quote_identifier(final_table_name)}"
            )
        )
        connection.execute(text(f"DROP TABLE {self._fully_qualified(deletion_name)}"))

    def _take_over_if_empty(
        self, connection: Connection, temp_table_name: str, final_table_name: str
    ) -> bool:
        """Rename-swap when the final table is still empty and plain: a first load then costs
        no INSERT ... SELECT of every row (a third of the cache step). Returns True if done."""
        final_table = self._fully_qualified(final_table_name)
        temp_table = self._fully_qualified(temp_table_name)
        # Same columns too: an append or merge must not change the table's definition.
        if not (
            self._is_plain_table(connection, final_table)
            and self._same_columns(connection, final_table, temp_table)
        ):
            return False
        # Re-check emptiness under the lock the rename needs anyway, so no concurrent insert
        # can slip in between the check and the swap.
        connection.execute(text(f"LOCK TABLE {final_table} IN ACCESS EXCLUSIVE MODE"))
        if connection.execute(text(f"SELECT EXISTS (SELECT 1 FROM {final_table})")).scalar():
            return False
        self._rename_swap(connection, temp_table_name, final_table_name)
        return True

    def _column_list(self, stream_name: str) -> str:
        return ", ".join(
            self._quote_identifier(column)
            for column in self._get_sql_column_definitions(stream_name)
        )

    def _swap_temp_table_with_final_table(
        self,
        stream_name: str,
        temp_table_name: str,
        final_table_name: str,
    ) -> None:
        final_table = self._fully_qualified(final_table_name)
        temp_table = self._fully_qualified(temp_table_name)
        with self.get_sql_connection() as connection:
            # A replace may change the definition (new columns, exact types for a table the
            # stock cache made), so only plainness matters here.
            take_over = self._is_plain_table(connection, final_table)
            if take_over:
                self._rename_swap(connection, temp_table_name, final_table_name)
        if not take_over:
            # Keep the table object (views, grants and indexes stay); replace its rows.
            self._ensure_compatible_table_schema(stream_name, final_table_name)
            columns = self._column_list(stream_name)
            insert = f"INSERT INTO {final_table} ({columns}) SELECT {columns} FROM {temp_table}"
            with self.get_sql_connection() as connection:
                connection.execute(text(f"TRUNCATE {final_table}"))
                connection.execute(text(insert))
        self._invalidate_table_cache(final_table_name)

    def _append_temp_table_to_final_table(
        self,
        temp_table_name: str,
        final_table_name: str,
        stream_name: str,
    ) -> None:
        columns = self._column_list(stream_name)
        with self.get_sql_connection() as connection:
            if self._take_over_if_empty(connection, temp_table_name, final_table_name):
                return
            connection.execute(
                text(
                    f"INSERT INTO {self._fully_qualified(final_table_name)} ({columns}) "
                    f"SELECT {columns} FROM {self._fully_qualified(temp_table_name)}"
                )
            )

    def _emulated_merge_temp_table_to_final_table(
        self,
        stream_name: str,
        temp_table_name: str,
        final_table_name: str,
    ) -> None:
        final_table = self._fully_qualified(final_table_name)
        temp_table = self._fully_qualified(temp_table_name)
        columns = list(self._get_sql_column_definitions(stream_name))
        primary_keys = [
            self.normalizer.normalize(pk)
            for pk in self.catalog_provider.get_primary_keys(stream_name)
        ]
        quote = self._quote_identifier

        def keys_match(left: str, right: str) -> str:
            return " AND ".join(f"{left}.{quote(pk)} = {right}.{quote(pk)}" for pk in primary_keys)

        column_list = ", ".join(quote(column) for column in columns)
        set_list = ", ".join(
            f"{quote(column)} = t.{quote(column)}"
            for column in columns
            if column not in primary_keys
        )
        has_duplicates_sql = (
            f"SELECT EXISTS (SELECT 1 FROM {temp_table} GROUP BY "
            + ", ".join(quote(pk) for pk in primary_keys)
            + " HAVING count(*) > 1)"
        )
        # One row per key, the last one the source emitted: the loading table was filled by a
        # single INSERT in emission order, so the higher ctid is the later record. The check is
        # cheap; the self-join DELETE only runs when a batch really repeats a key.
        dedupe_sql = (
            f"DELETE FROM {temp_table} a USING {temp_table} b "
            f"WHERE {keys_match('a', 'b')} AND a.ctid < b.ctid"
        )
        with self.get_sql_connection() as connection:
            if connection.execute(text(has_duplicates_sql)).scalar():
                connection.execute(text(dedupe_sql))
            if self._take_over_if_empty(connection, temp_table_name, final_table_name):
                return
            connection.execute(
                text(
                    f"UPDATE {final_table} f SET {set_list} "
                    f"FROM {temp_table} t WHERE {keys_match('f', 't')}"
                )
            )
            connection.execute(
                text(
                    f"INSERT INTO {final_table} ({column_list}) "
                    f"SELECT {column_list} FROM {temp_table} t "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {final_table} f WHERE {keys_match('f', 't')})"
                )
            )


def _abort_all(loads: dict[str, BackgroundLoad]) -> None:
    while loads:
        _, load = loads.popitem()
        load.abort()
