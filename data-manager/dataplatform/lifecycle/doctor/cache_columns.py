"""Models that read the cache, against the real cache tables (when PostgreSQL is reachable).

Each model that reads a source must use the cache's real column names: PyAirbyte lowercases them,
so `discountPercentage` is `discountpercentage`. Its SQL must also plan against the real tables:
EXPLAIN catches missing columns and bad casts such as `text ->> unknown`. Then generated staging
models are compared with their table's columns and column map (`staging_drift`). Without a
database this part is skipped with a note.
"""

from __future__ import annotations

import re

from dataplatform.lifecycle import cache_tables
from dataplatform.lifecycle.dbt_files import SQL_NOISE, DbtProject, Model
from dataplatform.lifecycle.doctor.report import ERROR, NOTE, Report
from dataplatform.lifecycle.doctor.staging_drift import check_staging_drift
from dataplatform.lifecycle.project import Project

_QUOTED = re.compile(r'"((?:[^"]|"")+)"')
_WORD = re.compile(r"\b[A-Za-z_][A-Za-z0-9_$]*\b")
_SOURCE_JINJA = re.compile(
    r"""\{\{\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*\}\}"""
)
_REF_JINJA = re.compile(
    r"""\{\{\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*\}\}"""
)


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def case_mismatches(sql: str, columns: set[str]) -> list[tuple[int, str, str]]:
    """(line, as written, real column) for identifiers that only match a column when lowercased.

    PostgreSQL folds unquoted names, so `discountPercentage` happens to work until someone
    quotes it (or dbt does); the cache's column is `discountpercentage`, and the model should
    say so. Comments, strings and Jinja are blanked first, keeping line numbers.
    """
    text = SQL_NOISE.sub(_blank, sql)
    found = []
    for match in _QUOTED.finditer(text):
        name = match.group(1).replace('""', '"')
        if name not in columns and name.lower() in columns:
            found.append((text.count("\n", 0, match.start()) + 1, f'"{name}"', name.lower()))
    text = _QUOTED.sub(_blank, text)
    for match in _WORD.finditer(text):
        word = match.group(0)
        if word == word.lower() or word.lower() not in columns:
            continue
        before = text[: match.start()].rstrip()
        if re.search(r"\bas$", before, re.IGNORECASE):
            continue  # an alias, not a column reference
        found.append((text.count("\n", 0, match.start()) + 1, word, word.lower()))
    return found


def render_for_explain(model: Model, dbt: DbtProject, relation_exists) -> str | None:
    """The model's SQL with config/source/ref resolved, or None when it needs real dbt.

    Relations are schema-qualified only: EXPLAIN runs in the database the checks connect to,
    which need not be the one dbt parsed against.
    """

    def source(match: re.Match) -> str:
        table = dbt.table(match.group(1), match.group(2))
        if table is None:
            raise LookupError
        return f'"{table.schema}"."{table.identifier}"'

    def ref(match: re.Match) -> str:
        target = dbt.models.get(match.group(2) or match.group(1))
        if target is None or not relation_exists(target.schema, target.alias):
            raise LookupError
        return f'"{target.schema}"."{target.alias}"'

    text = re.sub(r"\{#.*?#\}", "", model.sql, flags=re.DOTALL)
    text = re.sub(r"\{\{\s*config\(.*?\)\s*\}\}", "", text, flags=re.DOTALL)
    try:
        text = _REF_JINJA.sub(ref, _SOURCE_JINJA.sub(source, text))
    except LookupError:
        return None
    if "{{" in text or "{%" in text:
        return None
    return text


# Where the doctor finds PostgreSQL (POSTGRES_*, else the running local platform's cluster), and
# how it connects: shared with the codegen, which reads the cache tables' column maps.
_postgres = cache_tables.postgres
_connect = cache_tables.connect


class _Catalog:
    """Column names of the cache tables, read-only, one query per relation."""

    def __init__(self, cur):
        self.cur = cur

    def columns(self, schema: str, table: str) -> set[str]:
        self.cur.execute(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            (schema, table),
        )
        return {r[0] for r in self.cur.fetchall()}

    def exists(self, schema: str, name: str) -> bool:
        return bool(self.columns(schema, name))


def _check_model(project, dbt, model, catalog, conn, report, not_synced: set[str]) -> None:
    import psycopg2

    columns: set[str] = set()
    missing = []
    for src, name in sorted(model.sources):
        table = dbt.table(src, name)
        if table is None:
            continue  # reported by the dbt checks
        found = catalog.columns(table.schema, table.identifier)
        if not found:
            missing.append(f"{table.schema}.{table.identifier}")
        columns |= found
    if missing:
        not_synced.update(missing)
        return
    where = project.relative(model.path)
    for line, written, real in case_mismatches(model.sql, columns):
        report.add(
            ERROR,
            "dbt-columns",
            f"{where}:{line}: {written} is not a column of the cache table; the cache "
            f"lowercases names, the column is {real}",
            f"write {real} (e.g. `{real} as <snake_case_alias>`)",
        )
    sql = render_for_explain(model, dbt, catalog.exists)
    if sql is None:
        report.add(
            NOTE, "dbt-columns", f"{where}: needs dbt to render; column check limited to names"
        )
        return
    try:
        catalog.cur.execute("explain " + sql)
    except psycopg2.Error as exc:
        first = (exc.pgerror or str(exc)).strip().splitlines()[0]
        report.add(
            ERROR,
            "dbt-columns",
            f"{where} does not plan against the cache: {first}",
            "use the cache table's real column names and cast json text with "
            "`(col::jsonb ->> 'key')` (list them: select column_name from "
            "information_schema.columns where table_name = '<table>')",
        )
    finally:
        conn.rollback()


def check_cache_columns(project: Project, dbt: DbtProject, report: Report) -> None:
    pg = _postgres()
    conn = _connect(pg)
    if isinstance(conn, str):
        report.add(
            NOTE,
            "database",
            f"PostgreSQL {pg.host}:{pg.port}/{pg.dbname} is not reachable ({conn}); skipped "
            "the checks of staging models against the cache tables",
        )
        return
    try:
        conn.set_session(readonly=True, autocommit=False)
        with conn.cursor() as cur:
            catalog = _Catalog(cur)
            not_synced: set[str] = set()
            for model in sorted(dbt.models.values(), key=lambda m: str(m.path)):
                if model.sources:
                    _check_model(project, dbt, model, catalog, conn, report, not_synced)
            if not_synced:
                report.add(
                    NOTE,
                    "database",
                    "not synced yet, so their models were not checked: "
                    + ", ".join(sorted(not_synced)),
                )
            check_staging_drift(project, dbt, cur, report)
            conn.rollback()
    finally:
        conn.close()
