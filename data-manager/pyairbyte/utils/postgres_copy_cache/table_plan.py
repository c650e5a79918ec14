"""How a stream's cache table follows the source's schema: the plan for one sync's load.

Made once per stream, when its first record is staged, from the stream's declared properties,
the cache table as it is, the stored column map (`column_names`) and the connector YAML's
`schema_change:` policy. It decides, for every property, the column that holds it and that
column's type, and for the table, which DDL runs before the load:

| the table has               | declared now           | evolve (the default)                      |
|-----------------------------|------------------------|-------------------------------------------|
| no such column              | any                    | column added                              |
| bigint                      | number                 | widened to numeric                        |
| bigint or numeric           | string                 | widened to text (digits kept)             |
| text                        | object or array        | widened to jsonb if every stored value is |
|                             |                        | JSON with unchanged text; else a sibling  |
| numeric; text               | integer; scalar types  | kept: the new values fit exactly          |
| anything else               | another type           | kept; new values go to a typed sibling    |
|                             |                        | column (`price_jsonb`), reported          |
| a column no property maps to| (property removed)     | kept, NULL from then on                   |

`freeze` fails the sync instead, naming the columns (new columns, type changes or removed
columns, each set on its own); `discard` keeps the table as it is and drops those values (for a
type change each dropped value is recorded in the row's `_airbyte_meta.changes`). An old value
is never re-encoded: a widening that would change one is not made.

A widening `ALTER TABLE` fails when views read the column (dbt's staging models do): the views
are then dropped and re-created around it in the same transaction, and if one cannot be
re-created the column is left as it was and a sibling is used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pyairbyte.errors import CacheLoadError
from pyairbyte.utils import column_names
from pyairbyte.utils.data_policy import DISCARD, FREEZE, SchemaChangePolicy

log = logging.getLogger(__name__)

PG_MAX_COLUMNS = 1600
TEXT, BIGINT, NUMERIC, JSONB = "character varying", "bigint", "numeric", "jsonb"
# Old column type -> declared types whose values it holds exactly, as they are sent.
_FITS = {
    NUMERIC: {BIGINT},
    TEXT: {
        BIGINT,
        NUMERIC,
        "boolean",
        "date",
        "timestamp with time zone",
        "time with time zone",
        "time without time zone",
    },
}
# Column types the stock PostgresCache created where this cache creates exact ones: not a
# type change of the source (a warning says how to recreate the table).
LEGACY_TYPES = {"json", "timestamp without time zone", "numeric(38,9)"}


@dataclass
class PlannedColumn:
    name: str
    sql_type: str  # as PostgreSQL's format_type() spells it
    prop: str | None = None  # the property it holds this sync (None: platform or kept column)
    discard: bool = False  # declared with another type under `discard`: loaded as NULL


@dataclass
class StreamPlan:
    stream: str
    table: str
    columns: list[PlannedColumn]  # the loading table, in the final table's column order
    column_of: dict[str, str | None]  # property -> column (None: its values are discarded)
    ddl: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, column, type)
    map_rows: list[tuple[str, str, str]] = field(default_factory=list)  # (prop, type, column)
    changes: list[str] = field(default_factory=list)  # for the run's log and metadata
    lock: Any = None  # guards `columns` while undeclared properties are added mid-read

    def column(self, name: str) -> PlannedColumn:
        return next(c for c in self.columns if c.name == name)

    def use_sibling(self, column: str, old_type: str, taken: set[str]) -> str:
        """A widening of `column` that cannot be made: its new values go to a typed sibling."""
        planned = self.column(column)
        sibling = column_names.sibling_name(column, planned.sql_type, taken)
        self.ddl = [d for d in self.ddl if d[:2] != ("widen", column)] + [
            ("add", sibling, planned.sql_type)
        ]
        self.columns.append(PlannedColumn(sibling, planned.sql_type, planned.prop))
        self.column_of[planned.prop] = sibling
        self.map_rows = [r for r in self.map_rows if r[2] != column] + [
            (planned.prop, planned.sql_type, sibling)
        ]
        planned.prop, planned.sql_type = None, old_type
        self.changes.append(f"{column}: not widened; new values go to the sibling column {sibling}")
        return sibling


def make_plan(
    *,
    stream: str,
    table: str,
    declared: dict[str, str],
    existing: dict[str, str],
    stored_rows: list[tuple[str, str, str]],
    platform: dict[str, str],
    policy: SchemaChangePolicy,
    schema: str,
    replace: bool = False,
) -> StreamPlan:
    """The plan for one stream (see the module doc).

    declared: property -> type the JSON schema asks for; existing: the final table's columns ->
    types ({} if it does not exist yet); stored_rows: the column map's (property, type, column)
    rows, oldest first (the last per property is its current column); platform: `_airbyte_*`
    column -> type. replace: the write replaces every row, so no old value constrains a
    column's type: each takes the declared one (a type change is not a schema change then).
    """
    stored = {prop: (column, sql_type) for prop, sql_type, column in stored_rows}
    stored_all = {column for _, _, column in stored_rows}
    where = f"stream '{stream}' (table {schema}.{table})"
    table_exists = bool(existing)
    names = column_names.assign_columns(
        declared, {p: c for p, (c, _) in stored.items() if p in declared}, stored_all
    )
    plan = StreamPlan(stream=stream, table=table, columns=[], column_of={})
    by_name: dict[str, PlannedColumn] = {}
    for name, sql_type in existing.items():
        by_name[name] = PlannedColumn(name, sql_type)
    new_columns, type_changes, siblings = [], [], []
    taken = set(existing) | stored_all | set(platform)
    for prop, wanted in declared.items():
        column = names[prop]
        if stored.get(prop, (None, wanted))[1] != wanted:
            # Declared as it was before a type change: its column of that type, if any.
            column = next(
                (c for p, t, c in stored_rows if p == prop and t == wanted and c in existing),
                column,
            )
        old = existing.get(column)
        if old is None:
            if table_exists and policy.new_columns == DISCARD:
                plan.column_of[prop] = None
                plan.changes.append(f"new column {prop!r} discarded (schema_change.new_columns)")
                continue
            if table_exists:
                new_columns.append(prop)
            by_name[column] = PlannedColumn(column, wanted, prop)
            plan.ddl.append(("add", column, wanted))
            plan.column_of[prop] = column
            plan.map_rows.append((prop, wanted, column))
            if table_exists:
                plan.changes.append(f"column {column} added ({wanted})")
            continue
        plan.column_of[prop] = column
        if replace and old != wanted:
            by_name[column] = PlannedColumn(column, wanted, prop)
            plan.map_rows.append((prop, wanted, column))
            continue
        if old == wanted or old in LEGACY_TYPES:
            by_name[column].prop = prop
            if stored.get(prop) != (column, wanted):
                plan.map_rows.append((prop, wanted, column))
            continue
        type_changes.append(f"{column}: {old} -> {wanted}")
        if policy.type_changes == FREEZE:
            continue
        if policy.type_changes == DISCARD:
            by_name[column].prop, by_name[column].discard = prop, True
            plan.changes.append(f"{column}: values declared {wanted} discarded (it is {old})")
            continue
        if wanted in _FITS.get(old, ()):
            by_name[column].prop = prop
            plan.changes.append(f"{column}: declared {wanted}, kept as {old} (the values fit)")
            continue
        widened = _widening(old, wanted)
        if widened is not None:
            by_name[column] = PlannedColumn(column, widened, prop)
            plan.ddl.append(("widen", column, widened))
            plan.map_rows.append((prop, wanted, column))
            plan.changes.append(f"{column}: widened from {old} to {widened}")
            continue
        sibling = column_names.sibling_name(column, wanted, set())
        if existing.get(sibling) != wanted:  # not made by an earlier sync that failed later
            sibling = column_names.sibling_name(column, wanted, taken)
        siblings.append(sibling)
        by_name[sibling] = PlannedColumn(sibling, wanted, prop)
        plan.ddl.append(("add", sibling, wanted))
        plan.column_of[prop] = sibling
        plan.map_rows.append((prop, wanted, sibling))
        plan.changes.append(
            f"{column}: declared {wanted} but it is {old}; new values go to the sibling "
            f"column {sibling}"
        )
    held = {c for c in plan.column_of.values() if c}
    # Older columns of properties still declared (before a sibling took over) are not removed.
    still_declared = {c for p, _, c in stored_rows if p in declared}
    removed = [
        name
        for name in existing
        if name not in held
        and name not in platform
        and name not in still_declared
        and by_name[name].prop is None
    ]
    problems = []
    if new_columns and policy.new_columns == FREEZE:
        problems.append(f"new columns {', '.join(new_columns)} (schema_change.new_columns)")
    if type_changes and policy.type_changes == FREEZE:
        problems.append(f"type changes {', '.join(type_changes)} (schema_change.type_changes)")
    if removed and policy.removed_columns == FREEZE:
        problems.append(
            f"columns no longer declared {', '.join(removed)} (schema_change.removed_columns)"
        )
    if problems:
        raise CacheLoadError(
            f"{where}: the source's schema changed and the connector YAML freezes it: "
            f"{'; '.join(problems)}. Nothing was written for this stream. Fix: set those "
            "fields of schema_change: to evolve in the connector YAML to follow the source, "
            "or fix the source's schema."
        )
    newly_removed = {c for p, (c, _) in stored.items() if p not in declared}
    for name in removed:
        if name in newly_removed or not stored_rows:
            plan.changes.append(f"{name}: no longer declared; kept, NULL from now on")
    for name, sql_type in platform.items():
        by_name.setdefault(name, PlannedColumn(name, sql_type))
    plan.columns = list(by_name.values())
    if len(plan.columns) > PG_MAX_COLUMNS:
        raise CacheLoadError(
            f"{where} needs {len(plan.columns)} columns, past PostgreSQL's limit of "
            f"{PG_MAX_COLUMNS} columns per table. Nothing was written for this stream. Fix: "
            "select fewer fields in the stream's schema (or split the stream), or store the "
            "record as one jsonb column with a schema that declares a single object property."
        )
    return plan


def _widening(old: str, wanted: str) -> str | None:
    if old == BIGINT and wanted == NUMERIC:
        return NUMERIC
    if old in (BIGINT, NUMERIC) and wanted == TEXT:
        return TEXT
    if old == TEXT and wanted == JSONB:
        return JSONB  # only if every stored value converts exactly: checked before the ALTER
    return None
