"""`dataplatform check`: every rule the guide's Troubleshooting section learned the hard way.

Each finding says what is wrong, where, and how to fix it. Errors make the command exit 1;
warnings and notes do not. Checks, in order:
- code-locations.json is valid: names, modules, ports unique and in 4266-4299 (the platform's own
  validator, dataplatform.runtime.code_locations);
- workspace.yaml, the compose ports and the Dockerfile EXPOSE match code-locations.json (the
  platform's derived_configs), with the exact port that differs;
- every entry has its package, every package directory has its __init__.py, and no code
  location package is left without an entry (orphans, stale __pycache__);
- every enabled module imports in a clean process and exports a loadable `defs`;
- every connector YAML is valid with its env variables set, names are unique, and every
  location's connector has a YAML;
- every dbt source declares its schema, every source()/ref() resolves;
- when PostgreSQL is reachable: each model that reads the cache uses the cache's real column
  names (PyAirbyte lowercases them: `discountPercentage` is `discountpercentage`), and its SQL
  plans against the real tables (EXPLAIN, which catches missing columns and bad casts such as
  `text ->> unknown`). Without a database this part is skipped with a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dataplatform.lifecycle.dbt_files import DbtProject, Model, read_project
from dataplatform.lifecycle.probe import probe_modules
from dataplatform.lifecycle.project import Project, entries_by_name
from dataplatform.lifecycle.remove import connectors_used_by
from dataplatform.runtime import derived_configs
from dataplatform.runtime.code_locations import CodeLocationsError, load_document, validate
from pyairbyte import settings
from pyairbyte.utils.connector_config import (
    ConnectorConfigError,
    connector_files,
    find_connector_file,
    load_connector_file,
)

ERROR, WARNING, NOTE = "error", "warning", "note"
NON_LOCATION_PACKAGES = frozenset({"lib", "__pycache__"})


@dataclass(frozen=True)
class Finding:
    severity: str
    area: str
    message: str
    fix: str = ""

    def render(self) -> str:
        text = f"{self.severity.upper():7} [{self.area}] {self.message}"
        if self.fix:
            text += f"\n        fix: {self.fix}"
        return text


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: str, area: str, message: str, fix: str = "") -> None:
        self.findings.append(Finding(severity, area, message, fix))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        warnings = sum(f.severity == WARNING for f in self.findings)
        return f"check: {len(self.errors)} error(s), {warnings} warning(s)"


# --- code locations and derived files -------------------------------------------------------


def check_code_locations(project: Project, report: Report) -> dict | None:
    """Validate the JSON; returns the document when it could be read."""
    for finding in validate(project.code_locations, check_modules=False):
        report.add(
            ERROR if finding.severity == "error" else WARNING,
            "code-locations",
            str(finding),
            "edit the entry as the message says, then regenerate the derived files: "
            f"{derived_configs.REGENERATE}",
        )
    try:
        return load_document(project.code_locations)
    except CodeLocationsError:
        return None


def _workspace_ports(path: Path) -> dict[str, int]:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    ports = {}
    for item in doc.get("load_from") or []:
        server = item.get("grpc_server") if isinstance(item, dict) else None
        if isinstance(server, dict) and "location_name" in server:
            ports[str(server["location_name"])] = server.get("port")
    return ports


def check_derived_files(project: Project, doc: dict, report: Report) -> None:
    files = project.derived_files()
    try:
        drifted = derived_configs.drift(project.code_locations, files)
    except (CodeLocationsError, derived_configs.DerivedConfigError) as exc:
        report.add(ERROR, "config-files", str(exc), derived_configs.REGENERATE)
        return
    if files.workspace in drifted:
        served = _workspace_ports(files.workspace)
        for name, entry in entries_by_name(doc).items():
            if not entry.get("enabled", True):
                continue
            if name not in served:
                report.add(
                    ERROR,
                    "config-files",
                    f"{project.relative(files.workspace)} does not serve code location {name} "
                    f"(code-locations.json: port {entry.get('port')})",
                    derived_configs.REGENERATE,
                )
            elif served[name] != entry.get("port"):
                report.add(
                    ERROR,
                    "config-files",
                    f"{project.relative(files.workspace)} serves {name} on port {served[name]}, "
                    f"but code-locations.json says port {entry.get('port')}",
                    derived_configs.REGENERATE,
                )
    for path, diff in drifted.items():
        changed = [line for line in diff.splitlines()[2:] if line[:1] in "+-" and line[1:].strip()]
        report.add(
            ERROR,
            "config-files",
            f"{project.relative(path)} does not match code-locations.json:\n          "
            + "\n          ".join(changed[:8]),
            derived_configs.REGENERATE,
        )


# --- packages ------------------------------------------------------------------------------


def _looks_like_location(path: Path) -> bool:
    if (path / "assets").is_dir() or (path / "jobs").is_dir():
        return True
    init = path / "__init__.py"
    return init.is_file() and re.search(r"^defs\s*=", init.read_text(), re.MULTILINE) is not None


def _has_python(path: Path) -> bool:
    return any(p.suffix == ".py" for p in path.rglob("*") if "__pycache__" not in p.parts)


def check_packages(project: Project, doc: dict, report: Report) -> list[str]:
    """Package layout and orphans; returns the modules worth importing."""
    to_probe = []
    claimed: set[Path] = set()
    for name, entry in entries_by_name(doc).items():
        module = entry.get("module")
        if not isinstance(module, str):
            continue
        parts = module.split(".")
        if parts[0] != "dagster_code":
            if entry.get("enabled", True):
                to_probe.append(module)
            continue
        package = project.dagster_code.joinpath(*parts[1:])
        claimed.add(package)
        if not package.is_dir() or not _has_python(package):
            if entry.get("enabled", True):
                report.add(
                    ERROR,
                    "orphans",
                    f"code-locations.json entry {name!r} points at {module}, but "
                    f"{project.relative(package)} has no Python package",
                    f"restore the package, or drop the entry: dataplatform connector remove {name}",
                )
            continue
        missing = [
            d
            for d in [package, *sorted(p for p in package.rglob("*") if p.is_dir())]
            if "__pycache__" not in d.parts
            and any(f.suffix == ".py" for f in d.iterdir())
            and not (d / "__init__.py").exists()
        ]
        for directory in missing:
            report.add(
                ERROR,
                "packages",
                f"{project.relative(directory)}/ has Python files but no __init__.py, so "
                f"{module} cannot import from it",
                f"create it: touch {project.relative(directory / '__init__.py')}",
            )
        if entry.get("enabled", True):
            to_probe.append(module)
    if project.dagster_code.is_dir():
        for path in sorted(p for p in project.dagster_code.iterdir() if p.is_dir()):
            if path in claimed or path.name in NON_LOCATION_PACKAGES or path.name[0] in "._":
                continue
            if not _has_python(path):
                report.add(
                    ERROR,
                    "orphans",
                    f"{project.relative(path)}/ holds only cached bytecode (a removed location?); "
                    "stale __pycache__ can keep a removed module importable",
                    f"rm -rf {project.relative(path)}",
                )
            elif _looks_like_location(path):
                report.add(
                    ERROR,
                    "orphans",
                    f"{project.relative(path)}/ is a code location package with no entry in "
                    "code-locations.json, so the platform never serves it",
                    f'add an entry (name "{path.name}", module "dagster_code.{path.name}", the '
                    f"next free port) and run {derived_configs.REGENERATE}; or delete it: "
                    f"dataplatform connector remove {path.name}",
                )
    return to_probe


def check_imports(project: Project, modules: list[str], report: Report) -> None:
    for module, result in probe_modules(modules, project.root).items():
        if not result.get("ok"):
            report.add(
                ERROR,
                "imports",
                f"{module}: {result.get('error')}",
                f"see the traceback: python -c 'import {module}'",
            )
            continue
        file = result.get("file")
        if file and project.root.resolve() not in Path(file).resolve().parents:
            report.add(
                ERROR,
                "imports",
                f"{module} is imported from {file}, outside {project.root}: the checks "
                "would look at another copy of the code",
                "run with the environment of this repository (APP_ROOT, PYTHONPATH)",
            )
        if result.get("imports_airbyte"):
            report.add(
                WARNING,
                "imports",
                f"loading {module} imports airbyte (8-15 s and ~320 MB in every code server)",
                "import airbyte (or modules that do) inside the asset function",
            )


# --- connectors -----------------------------------------------------------------------------


def check_connectors(project: Project, doc: dict, report: Report) -> None:
    names: dict[str, Path] = {}
    for path in connector_files(project.connectors_dir):
        try:
            connector = load_connector_file(path)
        except ConnectorConfigError as exc:
            report.add(
                ERROR, "connectors", f"{exc.path}: field '{exc.field}': {exc.problem}", exc.fix
            )
            continue
        if connector.name in names:
            report.add(
                ERROR,
                "connectors",
                f"{path.name} and {names[connector.name].name} both declare name "
                f"{connector.name!r}; sync_connector would pick one of them",
                "give each connector YAML its own `name:`",
            )
        names.setdefault(connector.name, path)
    entries = entries_by_name(doc)
    if not project.dagster_code.is_dir():
        return
    for package in sorted(p for p in project.dagster_code.iterdir() if p.is_dir()):
        if package.name in NON_LOCATION_PACKAGES:
            continue
        for connector in sorted(connectors_used_by(package, entries.get(package.name))):
            try:
                find_connector_file(connector, project.connectors_dir)
            except ConnectorConfigError:
                report.add(
                    ERROR,
                    "connectors",
                    f"{project.relative(package)} syncs connector {connector!r}, but no YAML "
                    f"in {project.relative(project.connectors_dir)} declares it",
                    f"add {connector}.yaml there (or correct the name in the code)",
                )


# --- dbt --------------------------------------------------------------------------------------


def check_dbt(project: Project, dbt: DbtProject, report: Report) -> None:
    for path, problem in dbt.problems:
        report.add(ERROR, "dbt", f"{project.relative(path)}: {problem}", "fix the YAML syntax")
    for source in dbt.sources.values():
        if source.declared_schema is None:
            report.add(
                ERROR,
                "dbt",
                f"{project.relative(source.file)}: source {source.name!r} declares no `schema:`, "
                f'so dbt reads schema "{source.name}" (relation "{source.name}.<table>" does '
                "not exist)",
                f"add `schema: pyairbyte_cache` under `- name: {source.name}`",
            )
    for model in dbt.models.values():
        for src, table in sorted(model.sources):
            if dbt.table(src, table) is None:
                report.add(
                    ERROR,
                    "dbt",
                    f"{project.relative(model.path)} reads source('{src}', '{table}'), which no "
                    "sources YAML declares",
                    f"declare table {table} under source {src} (or correct the call)",
                )
        for ref in sorted(model.refs):
            if ref not in dbt.models:
                report.add(
                    ERROR,
                    "dbt",
                    f"{project.relative(model.path)} refs {ref!r}, which is not a model",
                    "correct the ref() or add the model",
                )


_STRIP = re.compile(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}|--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.DOTALL)
_QUOTED = re.compile(r'"((?:[^"]|"")+)"')
_WORD = re.compile(r"\b[A-Za-z_][A-Za-z0-9_$]*\b")


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def case_mismatches(sql: str, columns: set[str]) -> list[tuple[int, str, str]]:
    """(line, as written, real column) for identifiers that only match a column when lowercased.

    PostgreSQL folds unquoted names, so `discountPercentage` happens to work until someone
    quotes it (or dbt does); the cache's column is `discountpercentage`, and the model should
    say so. Comments, strings and Jinja are blanked first, keeping line numbers.
    """
    text = _STRIP.sub(_blank, sql)
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
    """The model's SQL with config/source/ref resolved, or None when it needs real dbt."""

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
        text = re.sub(
            r"""\{\{\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*\}\}""",
            source,
            text,
        )
        text = re.sub(
            r"""\{\{\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*\}\}""",
            ref,
            text,
        )
    except LookupError:
        return None
    if "{{" in text or "{%" in text:
        return None
    return text


def _connect():
    import psycopg2

    try:
        return psycopg2.connect(**settings.postgres_settings().psycopg2_kwargs(), connect_timeout=3)
    except psycopg2.OperationalError as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"


def check_cache_columns(project: Project, dbt: DbtProject, report: Report) -> None:
    import psycopg2

    pg = settings.postgres_settings()
    conn = _connect()
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

            def columns_of(schema: str, table: str) -> set[str]:
                cur.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = %s and table_name = %s",
                    (schema, table),
                )
                return {r[0] for r in cur.fetchall()}

            def relation_exists(schema: str, name: str) -> bool:
                return bool(columns_of(schema, name))

            not_synced = set()
            for model in sorted(dbt.models.values(), key=lambda m: str(m.path)):
                if not model.sources:
                    continue
                columns: set[str] = set()
                missing = []
                for src, name in sorted(model.sources):
                    table = dbt.table(src, name)
                    if table is None:
                        continue  # reported by check_dbt
                    found = columns_of(table.schema, table.identifier)
                    if not found:
                        missing.append(f"{table.schema}.{table.identifier}")
                    columns |= found
                if missing:
                    not_synced.update(missing)
                    continue
                for line, written, real in case_mismatches(model.sql, columns):
                    report.add(
                        ERROR,
                        "dbt-columns",
                        f"{project.relative(model.path)}:{line}: {written} is not a column of "
                        f"the cache table; the cache lowercases names, the column is {real}",
                        f"write {real} (e.g. `{real} as <snake_case_alias>`)",
                    )
                sql = render_for_explain(model, dbt, relation_exists)
                if sql is None:
                    report.add(
                        NOTE,
                        "dbt-columns",
                        f"{project.relative(model.path)}: needs dbt to render; column check "
                        "limited to names",
                    )
                    continue
                try:
                    cur.execute("explain " + sql)
                except psycopg2.Error as exc:
                    first = (exc.pgerror or str(exc)).strip().splitlines()[0]
                    report.add(
                        ERROR,
                        "dbt-columns",
                        f"{project.relative(model.path)} does not plan against the cache: {first}",
                        "use the cache table's real column names and cast json text with "
                        "`(col::jsonb ->> 'key')` (list them: select column_name from "
                        "information_schema.columns where table_name = '<table>')",
                    )
                finally:
                    conn.rollback()
            if not_synced:
                report.add(
                    NOTE,
                    "database",
                    "not synced yet, so their models were not checked: "
                    + ", ".join(sorted(not_synced)),
                )
    finally:
        conn.close()


def run_checks(project: Project | None = None, database: bool = True) -> Report:
    project = project or Project.from_settings()
    report = Report()
    doc = check_code_locations(project, report)
    if doc is not None:
        check_derived_files(project, doc, report)
        modules = check_packages(project, doc, report)
        check_imports(project, modules, report)
    check_connectors(project, doc or {"code_locations": []}, report)
    dbt = read_project(project.dbt_dir)
    check_dbt(project, dbt, report)
    if database:
        check_cache_columns(project, dbt, report)
    return report
