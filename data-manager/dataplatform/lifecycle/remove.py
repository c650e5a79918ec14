"""`dataplatform connector remove`: the guide's removal procedure as one transaction.

What belongs to a location:
- its package dagster_code/<name>/ (with __pycache__) and its code-locations.json entry;
- its connector YAML (the entry's metadata.connector) and a manifest the YAML names, unless
  another location's entry names the same connector;
- its dbt source (the entry's metadata.dbt_source; without one, a source named like the
  location), the models downstream of it and those models' property files.
A model that also reads something else (another connector's source, a model that stays) is
someone else's work too: the command stops and names it instead of deleting it.

With --drop-data, the cache tables those sources declare, PyAirbyte's state rows for them and the
relations of the removed models are dropped, identifiers quoted with psycopg2.sql.Identifier and
without CASCADE, so nothing that is not listed can go with them. The drops run in one database
transaction that commits only after the files were changed.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.lifecycle.dbt_files import DbtProject, read_project
from dataplatform.lifecycle.errors import LifecycleError
from dataplatform.lifecycle.file_transaction import FileTransaction
from dataplatform.lifecycle.location_connectors import connector_of, dbt_source_of
from dataplatform.lifecycle.project import (
    Project,
    derived_contents,
    entries_by_name,
    read_document,
    render_document,
)
from pyairbyte.errors import YamlFileError
from pyairbyte.utils import pg
from pyairbyte.utils.connector_config import ConnectorConfigError
from pyairbyte.utils.connector_files import connector_files, find_connector_file
from pyairbyte.utils.safe_yaml import load_yaml_file

_STATE_TABLES = ("_airbyte_state", "_airbyte_streams")


@dataclass
class DataDrop:
    cache_tables: list[tuple[str, str]] = field(default_factory=list)  # (schema, table)
    relations: list[tuple[str, str]] = field(default_factory=list)  # dbt models, downstream first
    kept: list[str] = field(default_factory=list)  # tables another source also declares


@dataclass
class RemovePlan:
    project: Project
    location: str
    txn: FileTransaction
    connector: str | None
    dbt_sources: list[str]
    models: list[str]
    data: DataDrop | None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"code location {self.location}: connector {self.connector or '(none found)'}, "
            f"dbt sources {', '.join(self.dbt_sources) or '(none)'}, "
            f"models {', '.join(self.models) or '(none)'}"
        ]
        lines += [f"  note: {n}" for n in self.notes]
        lines.append("files:")
        lines.append(self.txn.describe())
        if self.data is not None:
            lines.append("data (dropped):")
            lines += [f"  drop {s}.{t}" for s, t in self.data.relations]
            lines += [f"  drop {s}.{t} (+ its PyAirbyte state)" for s, t in self.data.cache_tables]
            lines += [f"  keep {k}" for k in self.data.kept]
        return "\n".join(lines)


def _package_dir(project: Project, location: str, entry: dict | None) -> Path:
    module = (entry or {}).get("module") or f"dagster_code.{location}"
    parts = module.split(".")
    if parts[0] == "dagster_code" and len(parts) == 2:
        return project.dagster_code / parts[1]
    return project.dagster_code / location


def _stage_connector_files(
    project: Project, location: str, connector: str, doc: dict, plan: RemovePlan
) -> None:
    users = [
        name
        for name, entry in entries_by_name(doc).items()
        if name != location and connector_of(entry) == connector
    ]
    if users:
        plan.notes.append(f"kept the YAML of {connector}: also used by {', '.join(users)}")
        return
    try:
        yaml_path = find_connector_file(connector, project.connectors_dir)
    except ConnectorConfigError:
        plan.notes.append(f"no connector YAML named {connector} to remove")
        return
    plan.txn.delete(yaml_path)
    manifest = _manifest_of(yaml_path)
    if manifest is None:
        return
    manifest_path = (yaml_path.parent / manifest).resolve()
    # Only a manifest inside the connectors directory is ours to delete: a YAML that points
    # elsewhere (`../../x`) must never make remove delete a file outside it.
    if not manifest_path.is_relative_to(project.connectors_dir.resolve()):
        plan.notes.append(f"kept manifest {manifest}: it is outside {project.connectors_dir}")
        return
    for other in connector_files(project.connectors_dir):
        if other == yaml_path:
            continue
        raw = _manifest_of(other)
        if raw is not None and (other.parent / raw).resolve() == manifest_path:
            plan.notes.append(f"kept manifest {manifest}: {other.name} uses it too")
            return
    if manifest_path.is_file():
        plan.txn.delete(manifest_path)


def _manifest_of(yaml_path: Path) -> str | None:
    """The YAML's `source_manifest` path, read with the loader's size and alias limits; None for
    a mapping manifest or a file that does not load (it is deleted all the same)."""
    try:
        doc = load_yaml_file(yaml_path)
    except YamlFileError:
        return None
    raw = doc.get("source_manifest") if isinstance(doc, dict) else None
    return raw if isinstance(raw, str) else None


def _dbt_sources_of(location: str, entry: dict | None, dbt: DbtProject) -> list[str]:
    # An entry without metadata.dbt_source: a generated location's source has its name.
    wanted = dbt_source_of(entry) or location
    return [wanted] if wanted in dbt.sources else []


def _stage_dbt_files(dbt: DbtProject, sources: list[str], plan: RemovePlan) -> None:
    models = dbt.downstream_models(set(sources))
    removed = set(models)
    for name in models:
        model = dbt.models[name]
        foreign_sources = sorted(f"{s}.{t}" for s, t in model.sources if s not in sources)
        foreign_refs = sorted(model.refs - removed)
        if foreign_sources or foreign_refs:
            raise LifecycleError(
                f"{model.path} reads {', '.join(foreign_sources + foreign_refs)} as well as "
                f"{plan.location}'s data, so removing it is not this command's call",
                f"edit {model.path.name} so it no longer reads {plan.location}'s models, or "
                "delete it by hand, then run the command again",
            )
    plan.models = models
    for name in models:
        plan.txn.delete(dbt.models[name].path)
    for pf in dbt.property_files:
        mine_sources = [s for s in pf.source_names if s in sources]
        mine_models = [m for m in pf.model_names if m in removed]
        if not (mine_sources or mine_models):
            continue
        others = [s for s in pf.source_names if s not in sources]
        others += [m for m in pf.model_names if m not in removed]
        if others or pf.other_keys:
            raise LifecycleError(
                f"{pf.path} also describes {', '.join(others + pf.other_keys)}",
                f"move {plan.location}'s entries into their own file (or delete them by hand), "
                "then run the command again",
            )
        plan.txn.delete(pf.path)


def _plan_data_drop(dbt: DbtProject, sources: list[str], models: list[str]) -> DataDrop:
    drop = DataDrop()
    elsewhere = {
        (t.schema, t.identifier): src.name
        for src in dbt.sources.values()
        if src.name not in sources
        for t in src.tables
    }
    for name in sources:
        for table in dbt.sources[name].tables:
            key = (table.schema, table.identifier)
            if key in elsewhere:
                drop.kept.append(
                    f"{table.schema}.{table.identifier} (source {elsewhere[key]} reads it too)"
                )
            elif key not in drop.cache_tables:
                drop.cache_tables.append(key)
    drop.relations = [(dbt.models[m].schema, dbt.models[m].alias) for m in reversed(models)]
    return drop


def plan_remove(project: Project, location: str, drop_data: bool = False) -> RemovePlan:
    doc = read_document(project)
    entry = entries_by_name(doc).get(location)
    package = _package_dir(project, location, entry)
    if entry is None and not package.exists():
        known = ", ".join(sorted(entries_by_name(doc))) or "none"
        raise LifecycleError(
            f"no code location named {location!r} (no entry in {project.code_locations} and no "
            f"{package})",
            f"use one of: {known}",
        )
    txn = FileTransaction(project.root)
    connector = connector_of(entry)
    plan = RemovePlan(project, location, txn, connector, [], [], None)
    txn.delete_tree(package)
    if connector is not None:
        _stage_connector_files(project, location, connector, doc, plan)

    dbt = read_project(project.dbt_dir)
    plan.dbt_sources = _dbt_sources_of(location, entry, dbt)
    _stage_dbt_files(dbt, plan.dbt_sources, plan)
    if drop_data:
        plan.data = _plan_data_drop(dbt, plan.dbt_sources, plan.models)

    if entry is not None:
        doc["code_locations"] = [
            e for e in doc["code_locations"] if not (isinstance(e, dict) and e is entry)
        ]
        txn.write(project.code_locations, render_document(doc))
        for path, text in derived_contents(project, doc).items():
            txn.write(path, text)
    return plan


def _drop_statements(cur, drop: DataDrop) -> list:
    """DROP statements for what exists, each relation with its own kind (table/view)."""
    from psycopg2 import sql

    kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}
    statements = []
    for schema, name in [*drop.relations, *drop.cache_tables]:
        cur.execute(
            "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relname = %s",
            (schema, name),
        )
        row = cur.fetchone()
        if row and row[0] in kinds:
            statements.append(
                (
                    f"{schema}.{name}",
                    sql.SQL("drop {} {}").format(
                        sql.SQL(kinds[row[0]]), sql.Identifier(schema, name)
                    ),
                )
            )
    for schema in sorted({s for s, _ in drop.cache_tables}):
        tables = [t for s, t in drop.cache_tables if s == schema]
        for state_table in _STATE_TABLES:
            cur.execute("select to_regclass(%s)", (f'"{schema}"."{state_table}"',))
            if cur.fetchone()[0] is not None:
                statements.append(
                    (
                        f"{schema}.{state_table} rows",
                        sql.SQL("delete from {} where table_name = any(%s)").format(
                            sql.Identifier(schema, state_table)
                        ),
                        tables,
                    )
                )
    return statements


def apply_remove(plan: RemovePlan) -> list[str]:
    """Change the files and (with --drop-data) drop the data; all or nothing. Returns what was
    dropped."""
    conn = None
    dropped: list[str] = []
    try:
        if plan.data is not None:
            import psycopg2

            try:
                conn = pg.connect()
            except psycopg2.OperationalError as exc:
                raise LifecycleError(
                    f"--drop-data: cannot reach PostgreSQL: {exc}".strip(),
                    "start the database (or set POSTGRES_*), or run without --drop-data",
                ) from None
            with conn.cursor() as cur:
                for label, statement, *params in _drop_statements(cur, plan.data):
                    try:
                        cur.execute(statement, params or None)
                    except psycopg2.Error as exc:
                        conn.rollback()
                        raise LifecycleError(
                            f"--drop-data: dropping {label} failed, nothing was changed: "
                            f"{str(exc).strip()}",
                            "drop or change what depends on it first (the error names it), "
                            "then run the command again",
                        ) from None
                    dropped.append(label)
        with plan.txn.applied():
            if conn is not None:
                conn.commit()  # files are changed; if this fails they are restored
    finally:
        if conn is not None:
            conn.close()
    _clear_bytecode(plan.project.dagster_code)
    return dropped


def _clear_bytecode(dagster_code: Path) -> None:
    """The guide's Step 2.5: stale __pycache__ can keep a removed module importable."""
    if not dagster_code.is_dir():
        return
    for cache in sorted(dagster_code.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache, ignore_errors=True)
