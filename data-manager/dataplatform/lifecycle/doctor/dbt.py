"""The dbt project: every source declares its schema, every source() and ref() resolves.

dbt's own view comes first: the prepared manifest (`ensure_manifest`, which runs `dbt parse` only
when a model, macro or dbt_project.yml changed) lists the sources and models exactly as dbt reads
them, Jinja and `dbt_project.yml` config included. When the project does not parse, which is what
an unresolved source() or ref() does to it, the static reader in `dbt_files` takes over, so the
finding can name the model and the call rather than only repeat dbt's error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from dataplatform.dbt.manifest import DbtManifestError, ensure_manifest
from dataplatform.lifecycle.dbt_files import DbtProject, Model, Source, SourceTable, read_project
from dataplatform.lifecycle.doctor.report import ERROR, Report
from dataplatform.lifecycle.project import Project


def _declared_schemas(files: set[Path]) -> dict[str, str | None]:
    """Source name -> the `schema:` its YAML declares (None: not declared).

    Read from the files themselves: after a partial parse, dbt 1.11 keeps a source's
    `unrendered_schema` from the previous parse, so the manifest cannot say that a `schema:` line
    was just deleted. (An unreadable file would not have parsed.)
    """
    declared: dict[str, str | None] = {}
    for path in sorted(files):
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        for raw in (doc.get("sources") or []) if isinstance(doc, dict) else []:
            if isinstance(raw, dict) and "name" in raw:
                declared[str(raw["name"])] = raw.get("schema")
    return declared


def project_from_manifest(manifest: dict, root: Path) -> DbtProject:
    """The project's own sources and models from a parsed manifest.json (packages left out)."""
    root = Path(root)
    name = manifest.get("metadata", {}).get("project_name")
    own = [
        node
        for node in manifest.get("sources", {}).values()
        if not name or node.get("package_name") == name
    ]
    declared = _declared_schemas({root / node["original_file_path"] for node in own})
    dbt = DbtProject(root=root)
    for node in own:
        source = dbt.sources.get(node["source_name"])
        if source is None:
            source = Source(
                node["source_name"],
                declared.get(node["source_name"]),
                root / node["original_file_path"],
            )
            dbt.sources[source.name] = source
        source.tables.append(
            SourceTable(
                source=source.name,
                name=node["name"],
                identifier=node.get("identifier") or node["name"],
                schema=node["schema"],  # what dbt resolved: the declared one or the source name
            )
        )
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model" or (name and node.get("package_name") != name):
            continue
        dbt.models[node["name"]] = Model(
            name=node["name"],
            path=root / node["original_file_path"],
            sql=node.get("raw_code", ""),
            sources={tuple(s) for s in node.get("sources", [])},
            refs={r["name"] if isinstance(r, dict) else r[-1] for r in node.get("refs", [])},
            schema=node["schema"],
            alias=node.get("alias") or node["name"],
        )
    return dbt


# dbt colours and timestamps its log lines.
_LOG_PREFIX = re.compile(r"^(\d\d:\d\d:\d\d\s+)?(Encountered an error:\s*)?")
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def _parse_error(exc: DbtManifestError) -> str:
    """dbt's own words for why it cannot parse: the first lines from its error on."""
    plain = _COLOUR.sub("", str(exc))
    lines = [_LOG_PREFIX.sub("", line.strip()) for line in plain.splitlines()[1:]]
    lines = [line for line in lines if line]
    start = next((i for i, line in enumerate(lines) if "error" in line.lower()), 0)
    return " ".join(lines[start : start + 3]) or "no output"


def load_dbt_project(project: Project, report: Report) -> DbtProject:
    """dbt's view of the project when it parses; the static reading, plus the reason, when not."""
    try:
        manifest = json.loads(ensure_manifest(project.dbt_dir).read_text())
    except (DbtManifestError, OSError, ValueError) as exc:
        report.add(
            ERROR,
            "dbt",
            f"dbt cannot parse {project.relative(project.dbt_dir)}: "
            + (_parse_error(exc) if isinstance(exc, DbtManifestError) else str(exc)),
            f"fix what dbt names (and any finding below); see all of it with: "
            f"dbt parse --project-dir {project.relative(project.dbt_dir)}",
        )
        return read_project(project.dbt_dir)
    return project_from_manifest(manifest, project.dbt_dir)


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
    # With a manifest these resolve by construction; the static reading is where they fail.
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
