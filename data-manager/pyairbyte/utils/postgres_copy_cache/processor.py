"""A PostgreSQL SQL processor that loads PyAirbyte's staged JSONL with COPY, losslessly.

How a stream gets into PostgreSQL (PyAirbyte's `write_stream_data` drives the steps; this class
replaces the ones that lose data or are slow):

1. PyAirbyte stages records as gzipped JSONL files (unchanged).
2. Loading table, in ONE transaction (background_load.py), started as soon as the stream's first
   staged file is closed and fed file by file while the source is still being read; the last
   files and the commit happen in `load_files`:
   - create the loading table `<stream>_<batch>` with the exact column types (types.py);
   - stream each file, still gzipped on disk, into a one-column temp table with COPY. Python
     never parses a record: the JSON text goes to the server as is, so no string is re-typed
     (pandas turned "000001" into 1) and no number goes through a float;
   - INSERT ... SELECT into the loading table, taking each field out of the line as jsonb and
     casting it to the column type in the server (`->>` returns strings verbatim; numbers keep
     their exact decimal text; date-times keep their instant).
   A bad value rolls the whole transaction back and raises `CacheLoadError` naming the stream,
   the field and the value's problem; a failed read rolls it back too (`CopyPostgresCache`).
3. PyAirbyte's write step calls the write method's hook (ours below), each in one
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
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from airbyte.constants import AB_INTERNAL_COLUMNS, AB_META_COLUMN
from airbyte.strategies import WriteMethod, WriteStrategy
from sqlalchemy import text

from pyairbyte.errors import CacheLoadError
from pyairbyte.utils import column_names
from pyairbyte.utils.airbyte_internals import PostgresProcessorHooks
from pyairbyte.utils.data_policy import DISCARD, FAIL, FREEZE, NULLIFY, DataPolicy
from pyairbyte.utils.postgres_copy_cache import load_sql
from pyairbyte.utils.postgres_copy_cache.background_load import BackgroundLoad
from pyairbyte.utils.postgres_copy_cache.ledger import SyncLedger
from pyairbyte.utils.postgres_copy_cache.load_errors import (
    display_type,
    explain_load_error,
    short_db_error,
)
from pyairbyte.utils.postgres_copy_cache.staging import FastJsonlWriter
from pyairbyte.utils.postgres_copy_cache.table_plan import (
    JSONB,
    LEGACY_TYPES,
    TEXT,
    PlannedColumn,
    StreamPlan,
    make_plan,
)
from pyairbyte.utils.postgres_copy_cache.types import (
    LosslessPostgresTypeConverter,
    canonical_type,
    pg_type_sql,
)
from pyairbyte.utils.sync_limits import active_budget

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# Streams loading in the background at once, each holding a pooled connection during the read
# (SQLAlchemy's default pool has 5 + 10 overflow). Further streams load when the read ends.
_MAX_BACKGROUND_LOADS = 4


_COLUMN_TYPES_SQL = """
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = to_regclass(:name) AND attnum > 0 AND NOT attisdropped
ORDER BY attnum
"""

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


class CopyPostgresSqlProcessor(PostgresProcessorHooks):
    """PyAirbyte's Postgres processor with COPY loading, exact types and atomic write methods."""

    type_converter_class = LosslessPostgresTypeConverter
    file_writer_class = FastJsonlWriter

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # stream name -> its load, started when the stream's first staged file was closed
        self._background_loads: dict[str, BackgroundLoad] = {}
        # The sync's counts and the connector YAML's policy (defaults outside sync_connector).
        budget = active_budget()
        self.ledger: SyncLedger = budget.ledger if budget is not None else SyncLedger()
        self.policy: DataPolicy = (
            (budget.policy if budget is not None else None)
            or getattr(self.sql_config, "data_policy", None)
            or DataPolicy()
        )
        self._plans: dict[str, StreamPlan] = {}
        self._plans_lock = threading.Lock()
        self._stream_keys: dict[str, list[str]] = {}
        self.accounted: set[str] = set()  # streams whose counts a load already checked
        if isinstance(self.file_writer, FastJsonlWriter):
            self.file_writer.on_batch_closed = self._load_in_background
            self.file_writer.gate = self
        # A processor dropped after a failed read must not leave open transactions behind.
        weakref.finalize(self, _abort_all, self._background_loads)

    def abort_background_loads(self) -> None:
        """Roll back every load still pending (after a failed read): nothing becomes visible."""
        _abort_all(self._background_loads)

    # ---- DDL with PostgreSQL-compiled types ----------------------------------------------------

    def _column_definitions_sql(self, stream_name: str) -> str:
        return ",\n  ".join(
            f"{self.quote_identifier(c.name)} {c.sql_type}"
            for c in self.stream_plan(stream_name).columns
        )

    # ---- The stream's plan: column names, types and schema changes (table_plan.py) -------------

    def stream_plan(self, stream_name: str) -> StreamPlan:
        """Made once per stream, at its first record (or its load, if it has none)."""
        plan = self._plans.get(stream_name)
        if plan is None:
            with self._plans_lock:
                plan = self._plans.get(stream_name)
                if plan is None:
                    plan = self._make_plan(stream_name)
                    self._plans[stream_name] = plan
        return plan

    def _make_plan(self, stream_name: str) -> StreamPlan:
        table = self.get_sql_table_name(stream_name)
        declared = {
            prop: canonical_type(self.type_converter.to_sql_type(definition))
            for prop, definition in self.catalog_provider.get_stream_properties(stream_name).items()
        }
        existing = self._existing_columns(table)
        with self.get_sql_connection() as connection:
            cursor = connection.connection.cursor()
            stored_rows = column_names.read_column_rows(cursor, self.sql_config.schema_name, table)
        plan = make_plan(
            stream=stream_name,
            table=table,
            declared=declared,
            existing=existing,
            stored_rows=stored_rows,
            platform={
                name: canonical_type(sql_type)
                for name, sql_type in self.sql_column_definitions(stream_name).items()
                if name in AB_INTERNAL_COLUMNS
            },
            policy=self.policy.schema_change,
            schema=self.sql_config.schema_name,
            replace=self._write_method(stream_name) == WriteMethod.REPLACE,
        )
        plan.lock = threading.Lock()
        self._warn_about_lossy_legacy_columns(table, existing, plan)
        if existing:
            self._apply_table_changes(plan, existing)
        counts = self.ledger.stream(stream_name)
        counts.schema_changes.extend(plan.changes)
        for change in plan.changes:
            log.warning("stream %s: schema change: %s", stream_name, change)
        return plan

    def process_airbyte_messages(self, messages: Any, write_strategy: Any, **kwargs: Any) -> None:
        self._write_strategy = write_strategy  # a plan needs the write method (`stream_plan`)
        super().process_airbyte_messages(messages, write_strategy=write_strategy, **kwargs)

    def _write_method(self, stream_name: str) -> WriteMethod:
        return self.catalog_provider.resolve_write_method(
            stream_name=stream_name,
            write_strategy=getattr(self, "_write_strategy", None) or WriteStrategy.AUTO,
        )

    def _declared_type(self, plan: StreamPlan, column: str) -> str:
        prop = plan.column(column).prop
        definition = self.catalog_provider.get_stream_properties(plan.stream)[prop]
        return canonical_type(self.type_converter.to_sql_type(definition))

    def _apply_table_changes(self, plan: StreamPlan, existing: dict[str, str]) -> None:
        """Run the plan's DDL on the final table: new columns, widenings (lossless, so they may
        commit before the load does). A widening that cannot be made becomes a sibling."""
        final_table = self.fully_qualified(plan.table)
        taken = set(existing) | {c.name for c in plan.columns}
        for kind, column, sql_type in list(plan.ddl):
            if kind != "widen":
                continue
            with self.get_sql_connection() as connection:
                ok = alter_column_type(connection, final_table, column, sql_type, existing[column])
            if not ok:
                plan.use_sibling(column, existing[column], taken)
        with self.get_sql_connection() as connection:
            for kind, column, sql_type in plan.ddl:
                if kind == "add" and column not in existing:
                    connection.execute(
                        text(
                            f"ALTER TABLE {final_table} ADD COLUMN IF NOT EXISTS "
                            f"{self.quote_identifier(column)} {sql_type}"
                        )
                    )

    # ---- The staging writer's gate (staging.py): names, keys and values as sent ----------------

    def column_for(self, stream_name: str, key: str) -> str | None:
        """The column of `key` in the staged line (None: its values are discarded)."""
        plan = self.stream_plan(stream_name)
        if key in plan.column_of:
            return plan.column_of[key]
        # A property the schema does not declare: a jsonb column of its own (evolve), dropped
        # (discard), or the sync fails (freeze).
        policy = self.policy.schema_change.new_columns
        where = f"stream '{stream_name}'"
        with plan.lock:
            if key in plan.column_of:
                return plan.column_of[key]
            if policy == FREEZE:
                raise CacheLoadError(
                    f"{where}: records carry the property {key!r}, which the stream's schema "
                    "does not declare, and the connector YAML freezes new columns. Nothing was "
                    "written for this stream. Fix: set schema_change.new_columns: evolve (it is "
                    "then stored as jsonb), or declare it in the stream's schema."
                )
            if policy == DISCARD:
                plan.column_of[key] = None
                plan.changes.append(f"undeclared property {key!r} discarded")
                return None
            taken = {c.name for c in plan.columns} | set(plan.column_of.values()) - {None}
            column = column_names.free_name(column_names.normalize(key), taken)
            plan.columns.append(PlannedColumn(column, JSONB, key))
            plan.column_of[key] = column
            plan.map_rows.append((key, JSONB, column))
            change = f"column {column} added (jsonb) for the undeclared property {key!r}"
            plan.changes.append(change)
            self.ledger.stream(stream_name).schema_changes.append(change)
            log.warning("stream %s: schema change: %s", stream_name, change)
        return column

    def _primary_keys(self, stream_name: str) -> list[str]:
        keys = self._stream_keys.get(stream_name)
        if keys is None:
            # The properties as the source names them (`orderId`): PyAirbyte's
            # get_primary_keys() gives them lowercased, which no record has as a key.
            configured = self.catalog_provider.get_configured_stream_info(stream_name)
            keys = self._stream_keys[stream_name] = [
                path[0] for path in configured.primary_key or [] if len(path) == 1
            ]
        return keys

    def _record_key(self, stream_name: str, data: dict) -> str:
        keys = self._primary_keys(stream_name)
        if not keys:
            return "(no primary key)"
        return ", ".join(f"{key}={data.get(key)!r}" for key in keys)

    def accept_keys(self, record_msg: Any) -> bool:
        """False for a record with a null primary key: quarantined, or the sync fails."""
        self.ledger.stream(record_msg.stream).emitted += 1
        keys = self._primary_keys(record_msg.stream)
        data = record_msg.data
        if not keys or all(data.get(key) is not None for key in keys):
            return True
        null = [key for key in keys if data.get(key) is None]
        reason = f"primary key {', '.join(null)} is null"
        if self.policy.bad_data.null_keys == FAIL:
            raise CacheLoadError(
                f"stream '{record_msg.stream}': a record's {reason} "
                f"({self._record_key(record_msg.stream, data)}). "
                "A merge cannot place it, and appended again on every sync it would be "
                "duplicated. Nothing was written for this stream. Fix: fix the source, or set "
                "bad_data.null_keys: dead_letter to keep such records in the dead-letter table."
            )
        self.ledger.stream(record_msg.stream).quarantined += 1
        self.ledger.dead_letter(
            record_msg.stream, reason, record_msg.model_dump_json(exclude_none=True)
        )
        return False

    def repair_values(self, record_msg: Any, record: dict) -> dict:
        """A record with U+0000 in a string or a non-finite number: fail, or change the values
        (NUL stripped, number nulled) and record each change in `_airbyte_meta.changes`."""
        from pyairbyte.utils.postgres_copy_cache.staging import has_non_finite

        stream = record_msg.stream
        changes = []
        for column, value in list(record.items()):
            if column.startswith("_airbyte_") and column in AB_INTERNAL_COLUMNS:
                continue
            nul = _holds_nul(value)
            non_finite = has_non_finite(value)
            if not (nul or non_finite):
                continue
            plan = self.stream_plan(stream)
            field = _property_of(plan, column)
            where = f"field '{field}'"
            if any(c.name == column for c in plan.columns):
                where += f' (column "{column}", {display_type(plan.column(column).sql_type)})'
            problem = (
                "a string contains U+0000, which PostgreSQL text and jsonb cannot store"
                if nul
                else "the number is too large for the reader (it became infinity)"
            )
            if self.policy.bad_data.invalid_values != NULLIFY:
                raise CacheLoadError(
                    f"stream '{stream}', record {self._record_key(stream, record_msg.data)}, "
                    f"{where}: {problem}. Nothing was written for this stream and its "
                    "table is unchanged. Fix: correct the value at the source, or set "
                    "bad_data.invalid_values: nullify in the connector YAML to "
                    + ("strip the character" if nul else "store NULL")
                    + " and record the change in _airbyte_meta.changes."
                )
            if nul:
                record[column] = _strip_nul(value)
                changes.append(
                    {
                        "field": field,
                        "change": "TRUNCATED",
                        "reason": "DESTINATION_SERIALIZATION_ERROR",
                    }
                )
            if non_finite:
                record[column] = _null_non_finite(record[column])
                changes.append(
                    {"field": field, "change": "NULLED", "reason": "SOURCE_SERIALIZATION_ERROR"}
                )
        meta = dict(record.get(AB_META_COLUMN) or {})
        meta["changes"] = list(meta.get("changes", [])) + changes
        record[AB_META_COLUMN] = meta
        return record

    def ensure_final_table(
        self,
        stream_name: str,
        *,
        create_if_missing: bool = True,
    ) -> str:
        table_name = self.get_sql_table_name(stream_name)
        if create_if_missing and not self.table_exists(table_name):
            self.create_table(table_name, self._column_definitions_sql(stream_name))
        return table_name

    def table_exists(self, table_name: str) -> bool:
        # One catalog lookup instead of SQLAlchemy's inspector listing every table.
        with self.get_sql_connection() as connection:
            return connection.execute(
                text("SELECT to_regclass(:name) IS NOT NULL"),
                {"name": self.fully_qualified(table_name)},
            ).scalar()

    def _existing_columns(self, table_name: str) -> dict[str, str]:
        """column name -> type (as PostgreSQL's format_type prints it) of an existing table."""
        name = self.fully_qualified(table_name)
        with self.get_sql_connection() as connection:
            return dict(connection.execute(text(_COLUMN_TYPES_SQL), {"name": name}).all())

    def add_missing_columns(self, stream_name: str, table_name: str) -> None:
        # The plan's columns the final table lacks: those of properties the source sent without
        # declaring them, added to the loading table during the read. Without reflecting the
        # whole table through SQLAlchemy (0.3 s per stream).
        existing = self._existing_columns(table_name)
        for column in self.stream_plan(stream_name).columns:
            if column.name not in existing:
                self.execute_sql(
                    f"ALTER TABLE {self.fully_qualified(table_name)} "
                    f"ADD COLUMN {self.quote_identifier(column.name)} {column.sql_type}"
                )
        self.invalidate_table_cache(table_name)

    def _warn_about_lossy_legacy_columns(
        self, table_name: str, existing: dict[str, str], plan: StreamPlan
    ) -> None:
        """A table the stock PostgresCache created keeps its lossy column types: say so.

        Appending or merging into it still works (values are cast on insert), but a
        timestamp column drops offsets and numeric(38,9) rounds. Changing the types in place
        would fail on dependent views and rewrite the table, so this only warns.
        """
        legacy = {
            c.name: existing[c.name]
            for c in plan.columns
            if c.prop is not None and existing.get(c.name) in LEGACY_TYPES
        }
        if legacy:
            found = ", ".join(
                f"{c} is {old} (not {display_type(self._declared_type(plan, c))})"
                for c, old in legacy.items()
            )
            log.warning(
                "%s.%s was created by PyAirbyte's stock PostgresCache: %s. Rows still load, but "
                "lose precision in these columns. Fix: run one sync with "
                "write_strategy='replace' (or drop the table) to recreate it with exact types.",
                self.sql_config.schema_name,
                table_name,
                found,
            )

    def execute_sql(self, sql: Any) -> Any:
        """PyAirbyte's, but a statement the server refuses raises `CacheLoadError` with the
        server's reason (and the limit, if one was hit), not the whole statement: a CREATE TABLE
        of a wide stream is tens of thousands of characters. A lost connection (no SQLSTATE) is
        left as it is, so it stays transient."""
        if isinstance(sql, str):
            sql = text(sql)
        with self.get_sql_connection() as connection:
            try:
                return connection.execute(sql)
            except sqlalchemy.exc.DBAPIError as error:
                if getattr(error.orig, "pgcode", None) is None:
                    raise
                statement = " ".join(str(sql).split())[:80]
                raise CacheLoadError(
                    f"PostgreSQL refused `{statement}...` in schema "
                    f"'{self.sql_config.schema_name}': {short_db_error(error)}"
                ) from None

    def init_connection(self, connection: Connection) -> None:
        # Date-times without an offset mean UTC, and timestamptz -> timestamp casts (into a
        # table the stock cache created) are done in UTC too, whatever the server's default.
        connection.execute(text("SET TIME ZONE 'UTC'"))

    def add_column(
        self,
        table: Table,
        column_name: str,
        column_type: sqlalchemy.types.TypeEngine,
    ) -> None:
        self.execute_sql(
            f"ALTER TABLE {self.fully_qualified(table.name)} "
            f"ADD COLUMN {self.quote_identifier(column_name)} {pg_type_sql(column_type)}"
        )

    # ---- Loading staged files ------------------------------------------------------------------

    def _start_load(self, stream_name: str, batch_id: str) -> BackgroundLoad:
        plan = self.stream_plan(stream_name)
        table_name = self.temp_table_name(stream_name, batch_id)
        loading_table = self.fully_qualified(table_name)
        connection = self.get_sql_engine().raw_connection()
        if connection.driver_connection.encoding != "UTF8":
            # Staged files are UTF-8; COPY must not transcode them as another encoding.
            connection.driver_connection.set_client_encoding("UTF8")
        created: list[str] = []  # the loading table's columns so far (the loader's thread)

        def statements(safe: bool) -> tuple[list[str], str]:
            """(DDL for columns added since the last file, the INSERT) for the next file."""
            with plan.lock:
                columns = list(plan.columns)
            ddl = []
            if not created:
                ddl.append(
                    f"CREATE TABLE {loading_table} (\n  "
                    + ",\n  ".join(f"{self.quote_identifier(c.name)} {c.sql_type}" for c in columns)
                    + "\n)"
                )
            else:
                ddl += [
                    f"ALTER TABLE {loading_table} ADD COLUMN {self.quote_identifier(c.name)} "
                    f"{c.sql_type}"
                    for c in columns
                    if c.name not in created
                ]
            created[:] = [c.name for c in columns]
            if safe:
                ddl += load_sql.try_functions_sql(c.sql_type for c in columns)
            return ddl, load_sql.insert_sql(loading_table, columns, safe=safe)

        return BackgroundLoad(
            connection=connection,
            table_name=table_name,
            statements=statements,
            nullify=self.policy.bad_data.invalid_values == NULLIFY,
            explain_error=functools.partial(
                explain_load_error,
                schema_name=self.sql_config.schema_name,
                stream_name=stream_name,
                columns=plan.columns,
                primary_keys=[plan.column_of.get(k) or k for k in self._primary_keys(stream_name)],
            ),
            before_commit=functools.partial(self._account, stream_name, loading_table),
        )

    def _account(self, stream_name: str, loading_table: str, cursor: Any, rows: int) -> None:
        """Before the load commits: its counts, the stored column map, and the check that every
        record the source sent landed or is in the dead-letter table."""
        counts = self.ledger.stream(stream_name)
        counts.landed = rows
        cursor.execute(
            f"SELECT count(*) FROM {loading_table}, "
            f"jsonb_array_elements(COALESCE({self.quote_identifier(AB_META_COLUMN)}::jsonb "
            "-> 'changes', "
            "'[]'::jsonb))"
        )
        counts.values_changed = cursor.fetchone()[0]
        plan = self.stream_plan(stream_name)
        schema = self.sql_config.schema_name
        cursor.execute(column_names.map_sql(column_names.CREATE_MAP_SQL, schema))
        for prop, sql_type, column in plan.map_rows:
            cursor.execute(
                column_names.map_sql(column_names.INSERT_MAP_SQL, schema),
                {"table": plan.table, "property": prop, "sql_type": sql_type, "column": column},
            )
        self.check_accounting(stream_name)
        self.accounted.add(stream_name)

    def check_accounting(self, stream_name: str) -> None:
        """Fail (or warn, per the connector YAML) when the stream's counts do not add up, or
        when lines could not be parsed and the YAML says such records fail the sync."""
        counts = self.ledger.stream(stream_name)
        bad_data = self.policy.bad_data
        if counts.rejected and bad_data.unparsable_records == FAIL:
            first = next(d for d in self.ledger.dead_letters if d.stream == stream_name)
            raise CacheLoadError(
                f"stream '{stream_name}': {counts.rejected} record(s) the source sent could not "
                f"be parsed ({first.reason[:200]}). Nothing was written for this stream. Fix: "
                "fix the source, or set bad_data.unparsable_records: dead_letter to keep such "
                "records in the dead-letter table and load the rest."
            )
        missing = counts.unaccounted()
        if missing:
            message = (
                f"stream '{stream_name}': the counts do not add up: the source sent "
                f"{counts.emitted + counts.rejected} records"
                + (f" (it says {counts.source_stated})" if counts.source_stated is not None else "")
                + f", {counts.landed} landed, {counts.rejected + counts.quarantined} are in the "
                f"dead-letter table: {missing} unaccounted for."
            )
            if bad_data.count_mismatch == FAIL:
                raise CacheLoadError(
                    message + " Nothing was written for this stream. Fix: look for the missing "
                    "records in the connector's log; set bad_data.count_mismatch: warn to load "
                    "anyway."
                )
            log.warning("%s", message)

    def _load_in_background(self, batch_handle: Any) -> None:
        """Called by the writer whenever it closes a staged file during the read."""
        stream_name = batch_handle.stream_name
        load = self._background_loads.get(stream_name)
        if load is None:
            if len(self._background_loads) >= _MAX_BACKGROUND_LOADS:
                return  # loaded with the rest when the read ends
            load = self._start_load(stream_name, batch_handle.batch_id)
            self._background_loads[stream_name] = load
        load.submit(batch_handle.files)

    def load_files(
        self,
        files: list[Path],
        stream_name: str,
        batch_id: str,
    ) -> str:
        """Load whatever is not loaded yet, check the counts, commit, and return the loading
        table's name."""
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
        final_table = self.fully_qualified(final_table_name)
        connection.execute(
            text(f"ALTER TABLE {final_table} RENAME TO {self.quote_identifier(deletion_name)}")
        )
        connection.execute(
            text(
                f"ALTER TABLE {self.fully_qualified(temp_table_name)} "
                f"RENAME TO {self.quote_identifier(final_table_name)}"
            )
        )
        connection.execute(text(f"DROP TABLE {self.fully_qualified(deletion_name)}"))

    def _take_over_if_empty(
        self, connection: Connection, temp_table_name: str, final_table_name: str
    ) -> bool:
        """Rename-swap when the final table is still empty and plain: a first load then costs
        no INSERT ... SELECT of every row (a third of the cache step). Returns True if done."""
        final_table = self.fully_qualified(final_table_name)
        temp_table = self.fully_qualified(temp_table_name)
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
            self.quote_identifier(c.name) for c in self.stream_plan(stream_name).columns
        )

    def replace_final_table(
        self,
        stream_name: str,
        temp_table_name: str,
        final_table_name: str,
    ) -> None:
        final_table = self.fully_qualified(final_table_name)
        temp_table = self.fully_qualified(temp_table_name)
        with self.get_sql_connection() as connection:
            # A replace may change the definition (new columns, exact types for a table the
            # stock cache made), so only plainness matters here.
            take_over = self._is_plain_table(connection, final_table)
            if take_over:
                self._rename_swap(connection, temp_table_name, final_table_name)
        if not take_over:
            # Keep the table object (views, grants and indexes stay); replace its rows, after
            # giving each column the declared type (no old value has to fit any more).
            self.ensure_compatible_table_schema(stream_name, final_table_name)
            existing = self._existing_columns(final_table_name)
            for column in self.stream_plan(stream_name).columns:
                if existing.get(column.name) not in (None, column.sql_type):
                    with self.get_sql_connection() as connection:
                        alter_column_type(
                            connection,
                            final_table,
                            column.name,
                            column.sql_type,
                            existing[column.name],
                        )
            columns = self._column_list(stream_name)
            insert = f"INSERT INTO {final_table} ({columns}) SELECT {columns} FROM {temp_table}"
            with self.get_sql_connection() as connection:
                connection.execute(text(f"TRUNCATE {final_table}"))
                connection.execute(text(insert))
        self.invalidate_table_cache(final_table_name)

    def append_to_final_table(
        self,
        stream_name: str,
        temp_table_name: str,
        final_table_name: str,
    ) -> None:
        columns = self._column_list(stream_name)
        with self.get_sql_connection() as connection:
            if self._take_over_if_empty(connection, temp_table_name, final_table_name):
                return
            connection.execute(
                text(
                    f"INSERT INTO {self.fully_qualified(final_table_name)} ({columns}) "
                    f"SELECT {columns} FROM {self.fully_qualified(temp_table_name)}"
                )
            )

    def merge_into_final_table(
        self,
        stream_name: str,
        temp_table_name: str,
        final_table_name: str,
    ) -> None:
        final_table = self.fully_qualified(final_table_name)
        temp_table = self.fully_qualified(temp_table_name)
        plan = self.stream_plan(stream_name)
        columns = [c.name for c in plan.columns]
        primary_keys = [plan.column_of.get(pk) or pk for pk in self._primary_keys(stream_name)]
        quote = self.quote_identifier

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
                dropped = connection.execute(text(dedupe_sql)).rowcount
                self.ledger.stream(stream_name).duplicate_keys += dropped
                log.info(
                    "stream %s: %d record(s) had the key of a later record in the same batch; "
                    "the last one emitted was kept",
                    stream_name,
                    dropped,
                )
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


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def _null_non_finite(value: Any) -> Any:
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _null_non_finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_null_non_finite(v) for v in value]
    return value


def _property_of(plan: StreamPlan, column: str) -> str:
    return next((p for p, c in plan.column_of.items() if c == column), column)


def alter_column_type(
    connection: Connection, table: str, column: str, new_type: str, old_type: str
) -> bool:
    """Widen `table.column` to `new_type` in one transaction, re-creating the views that read
    it; False (and nothing changed) when a stored value would change or a view cannot be
    re-created."""
    quoted = column_names.quote(column)
    if old_type == TEXT and new_type == JSONB:
        for statement in load_sql.try_functions_sql(["jsonb"]):
            connection.execute(text(statement))
        inexact = connection.execute(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {quoted} IS NOT NULL AND "
                f"({load_sql.try_function('jsonb')}({quoted}) IS NULL OR "
                f"{load_sql.try_function('jsonb')}({quoted})::text <> {quoted}))"
            )
        ).scalar()
        if inexact:
            return False
    views = connection.execute(text(_DEPENDENT_VIEWS_SQL), {"name": table}).all()
    if any(kind != "v" for _, _, _, kind in views):
        return False  # a materialized view: its data cannot be re-created here
    savepoint = connection.begin_nested()
    try:
        for name, _, _, _ in sorted(views, key=lambda v: -v[1]):
            connection.execute(text(f"DROP VIEW {name}"))
        connection.execute(
            text(
                f"ALTER TABLE {table} ALTER COLUMN {quoted} TYPE {new_type} "
                f"USING {quoted}::{'text' if new_type == TEXT else new_type}"
            )
        )
        for name, _, definition, _ in sorted(views, key=lambda v: v[1]):
            connection.execute(text(f"CREATE VIEW {name} AS {definition}"))
    except sqlalchemy.exc.DBAPIError as error:
        savepoint.rollback()
        log.warning("%s.%s not widened to %s: %s", table, column, new_type, short_db_error(error))
        return False
    savepoint.commit()
    return True


# Views reading a table, directly or through other views: (name, depth, definition, relkind).
_DEPENDENT_VIEWS_SQL = """
WITH RECURSIVE deps(oid, depth) AS (
    SELECT DISTINCT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = to_regclass(:name)
      AND r.ev_class <> to_regclass(:name)
    UNION
    SELECT DISTINCT r.ev_class, deps.depth + 1 FROM deps
    JOIN pg_depend d ON d.refobjid = deps.oid
    JOIN pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> deps.oid AND deps.depth < 20
)
SELECT c.oid::regclass::text, max(deps.depth), pg_get_viewdef(c.oid), c.relkind::text
FROM deps JOIN pg_class c ON c.oid = deps.oid
GROUP BY c.oid, c.relkind
"""


def _abort_all(loads: dict[str, BackgroundLoad]) -> None:
    while loads:
        _, load = loads.popitem()
        load.abort()
