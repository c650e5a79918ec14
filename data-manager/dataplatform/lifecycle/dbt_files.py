"""A static reading of the dbt project: sources, models, their source()/ref() edges, schemas.

No dbt involved (parsing costs seconds and fails on the very mistakes `check` wants to report):
YAML files are read with PyYAML, and `source('a', 'b')` / `ref('m')` calls are found with a
regular expression. Good for the project's own simple models; Jinja beyond config/source/ref is
left alone by the callers that need rendered SQL. The doctor reads dbt's own manifest whenever
the project parses, and this reading only when it does not (`dataplatform.lifecycle.doctor.dbt`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_SOURCE_CALL = re.compile(r"""\bsource\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)""")
_REF_CALL = re.compile(
    r"""\bref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?(?:,\s*v(?:ersion)?\s*=[^)]*)?\)"""
)
_CONFIG_CALL = re.compile(r"\{\{\s*config\((.*?)\)\s*\}\}", re.DOTALL)
_CONFIG_KW = re.compile(r"""\b(schema|alias)\s*=\s*['"]([^'"]+)['"]""")
# Jinja, comments and string literals of a model's SQL: what a static reading of column names
# blanks first (a JSON key is a string, not a column). Shared by the doctor's two column checks.
SQL_NOISE = re.compile(
    r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}|--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.DOTALL
)


@dataclass(frozen=True)
class SourceTable:
    source: str
    name: str
    identifier: str
    schema: str  # declared schema, else dbt's default: the source name


@dataclass
class Source:
    name: str
    declared_schema: str | None
    file: Path
    tables: list[SourceTable] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return self.declared_schema or self.name


@dataclass
class Model:
    name: str
    path: Path
    sql: str
    sources: set[tuple[str, str]]
    refs: set[str]
    schema: str
    alias: str


@dataclass
class PropertyFile:
    path: Path
    model_names: list[str]
    source_names: list[str]
    other_keys: list[str]  # seeds:, macros:, ... (a file with these is never deleted)


@dataclass
class DbtProject:
    root: Path
    sources: dict[str, Source] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)
    property_files: list[PropertyFile] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # unreadable files

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def table(self, source: str, table: str) -> SourceTable | None:
        src = self.sources.get(source)
        return next((t for t in src.tables if t.name == table), None) if src else None

    def downstream_models(self, source_names: set[str]) -> list[str]:
        """Models that read these sources, directly or through other models, in build order."""
        selected: list[str] = []
        frontier = True
        while frontier:
            frontier = False
            for model in self.models.values():
                if model.name in selected:
                    continue
                if any(s in source_names for s, _ in model.sources) or model.refs & set(selected):
                    selected.append(model.name)
                    frontier = True
        return selected


def _project_schema_config(root: Path) -> tuple[str, dict]:
    try:
        doc = yaml.safe_load((root / "dbt_project.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return "", {}
    name = str(doc.get("name", ""))
    models = doc.get("models") or {}
    return name, (models.get(name) or {}) if isinstance(models, dict) else {}


def _folder_schema(tree: dict, parts: tuple[str, ...]) -> str | None:
    """The deepest `+schema` set in dbt_project.yml along the model's folder path."""
    schema = tree.get("+schema", tree.get("schema")) if isinstance(tree, dict) else None
    node = tree
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            break
        schema = node.get("+schema", node.get("schema", schema))
    return schema


def read_project(root: Path, target_schema: str = "public") -> DbtProject:
    project = DbtProject(root=Path(root))
    models_dir = project.models_dir
    _, tree = _project_schema_config(project.root)
    for path in sorted(models_dir.rglob("*.sql")):
        text = path.read_text()
        config = " ".join(m.group(1) for m in _CONFIG_CALL.finditer(text))
        kw = dict(_CONFIG_KW.findall(config))
        folder = path.relative_to(models_dir).parent.parts
        schema = kw.get("schema") or _folder_schema(tree, folder) or target_schema
        project.models[path.stem] = Model(
            name=path.stem,
            path=path,
            sql=text,
            sources=set(_SOURCE_CALL.findall(text)),
            refs={m[1] or m[0] for m in _REF_CALL.findall(text)},
            schema=schema,
            alias=kw.get("alias", path.stem),
        )
    for path in sorted([*models_dir.rglob("*.yml"), *models_dir.rglob("*.yaml")]):
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            project.problems.append((path, f"not valid YAML: {exc}"))
            continue
        if not isinstance(doc, dict):
            continue
        model_names = [
            m["name"] for m in doc.get("models") or [] if isinstance(m, dict) and "name" in m
        ]
        source_names = []
        for raw in doc.get("sources") or []:
            if not isinstance(raw, dict) or "name" not in raw:
                continue
            source = Source(str(raw["name"]), raw.get("schema"), path)
            for t in raw.get("tables") or []:
                if not isinstance(t, dict) or "name" not in t:
                    continue
                source.tables.append(
                    SourceTable(
                        source=source.name,
                        name=str(t["name"]),
                        identifier=str(t.get("identifier") or t["name"]),
                        schema=source.schema,
                    )
                )
            project.sources[source.name] = source
            source_names.append(source.name)
        others = [k for k in doc if k not in ("version", "models", "sources")]
        project.property_files.append(PropertyFile(path, model_names, source_names, others))
    return project
