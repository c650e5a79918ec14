"""`dataplatform connector add`: one connector YAML in, a served and transformed connector out.

Order matters for atomicity: everything that can fail for a reason in the input (name, port,
YAML, the source's check and discover, name clashes in dbt) is decided before a single byte is
written. Then every file is written in one FileTransaction, and the result is verified (the new
location imports and its `defs` load; dbt parses the project with the new models). A failed
verification, like any other exception, restores every file as it was.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform.lifecycle import cache_tables, dbt_codegen, names
from dataplatform.lifecycle.dbt_files import DbtProject, read_project
from dataplatform.lifecycle.discovery import DiscoveredStream, check_and_discover
from dataplatform.lifecycle.errors import LifecycleError
from dataplatform.lifecycle.file_transaction import FileTransaction
from dataplatform.lifecycle.location_connectors import connector_of, owner_of_dbt_source
from dataplatform.lifecycle.probe import probe_modules
from dataplatform.lifecycle.project import (
    Project,
    choose_port,
    derived_contents,
    entries_by_name,
    new_entry,
    read_document,
    render_document,
)
from dataplatform.lifecycle.scaffold import LocationSpec, location_files
from pyairbyte import settings
from pyairbyte.utils.connector_config import (
    ConnectorConfig,
    ConnectorConfigError,
    load_connector_file,
)
from pyairbyte.utils.connector_files import connector_files, declared_name, find_connector_file
from pyairbyte.utils.safe_yaml import load_yaml_file

Discover = Callable[[ConnectorConfig, list[str] | None], list[DiscoveredStream]]


@dataclass
class AddPlan:
    project: Project
    spec: LocationSpec
    connector: ConnectorConfig
    txn: FileTransaction
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        spec = self.spec
        head = (
            f"code location {spec.location}: connector {spec.connector_name}, "
            f"streams {', '.join(spec.streams)}, port {spec.port}\n"
            f"  sync asset {spec.sync_asset} -> cache tables {', '.join(spec.cache_tables())}; "
            f"transform asset {spec.transform_asset}; job {spec.job}\n"
        )
        notes = "".join(f"  note: {n}\n" for n in self.notes)
        # Nothing above prints config; redact anyway, so a secret never reaches the console.
        return self.connector.redact(head + notes + "files:\n" + self.txn.describe())


def _connector_file(project: Project, location: str, yaml_path: Path | None) -> tuple[Path, bool]:
    """(the YAML to load, whether it must be copied into external-connectors/)."""
    if yaml_path is None:
        try:
            return find_connector_file(location, project.connectors_dir), False
        except ConnectorConfigError:
            raise LifecycleError(
                f"no connector YAML for {location!r} in {project.connectors_dir}",
                f"pass --connector-yaml PATH, or put the YAML in {project.connectors_dir} with "
                f"`name: {location}`",
            ) from None
    path = Path(yaml_path).expanduser().resolve()
    if not path.is_file():
        raise LifecycleError(f"--connector-yaml {yaml_path}: no such file", "check the path")
    inside = path.parent == project.connectors_dir.resolve()
    return path, not inside


def _copy_connector_files(
    project: Project, connector: ConnectorConfig, txn: FileTransaction
) -> None:
    """Stage the YAML (and a manifest it names by relative path) into external-connectors/."""
    target = project.connectors_dir / connector.path.name
    _stage_copy(connector.path, target, txn, "--connector-yaml")
    raw = load_yaml_file(connector.path).get("source_manifest")  # loaded once already: valid
    if isinstance(raw, str) and connector.manifest_path is not None:
        manifest_target = (project.connectors_dir / raw).resolve()
        if project.connectors_dir.resolve() not in manifest_target.parents:
            raise LifecycleError(
                f"{connector.path}: field 'source_manifest': {raw!r} points outside "
                "the connector directory once the YAML is copied there",
                "put the manifest next to the YAML (e.g. manifests/<name>.yaml) or inline it",
            )
        _stage_copy(connector.manifest_path, manifest_target, txn, "source_manifest")


def _stage_copy(source: Path, target: Path, txn: FileTransaction, what: str) -> None:
    data = source.read_bytes()
    if target.exists():
        if target.read_bytes() != data:
            raise LifecycleError(
                f"{what}: {target} already exists with different content",
                f"rename {source.name}, or remove the old file if it is unused",
            )
        return
    txn.write(target, data)


def _check_unique_connector_name(project: Project, connector: ConnectorConfig) -> None:
    for path in connector_files(project.connectors_dir):
        if path.resolve() == connector.path.resolve() or path.name == connector.path.name:
            continue
        if declared_name(path) == connector.name:
            raise LifecycleError(
                f"{path} already declares connector name {connector.name!r}",
                "give the new connector a different `name:`, or add the existing YAML "
                "(leave out --connector-yaml)",
            )


def _model_names(
    location: str, streams: list[DiscoveredStream], existing: set[str]
) -> list[tuple[str, str]]:
    """(staging, reporting) per stream: the guide's names, prefixed with the location on a clash
    (two connectors may both have a `products` stream)."""
    taken = set(existing)
    out = []
    for stream in streams:
        base = names.snake_case(stream.name)
        pair = (f"staging_{base}", f"{base}_reporting")
        if pair[0] in taken or pair[1] in taken:
            pair = (f"staging_{location}_{base}", f"{location}_{base}_reporting")
        clash = [m for m in pair if m in taken]
        if clash:
            raise LifecycleError(
                f"dbt model {clash[0]} already exists",
                "rename or remove the existing model, or choose another location name",
            )
        taken.update(pair)
        out.append(pair)
    return out


def _check_relation_lengths(
    location: str, cache_schema: str, streams: list[DiscoveredStream], pairs: list[tuple[str, str]]
) -> None:
    """Every relation the add creates fits PostgreSQL's 63 characters; dbt would otherwise fail
    only when the job's transform first runs ("Relation name ... is longer than 63")."""
    for stream, (staging, reporting) in zip(streams, pairs, strict=True):
        leave_out = f"leave stream {stream.name!r} out (--streams with the others)"
        prefixed = staging.startswith(f"staging_{location}_")
        fix = f"choose a shorter location name, or {leave_out}" if prefixed else leave_out
        table = dbt_codegen.cache_table_name(stream.name)
        length = names.cache_name_length(stream.name)
        if length > names.PG_MAX_IDENTIFIER:  # the cache would cut the name (to `table`)
            raise LifecycleError(
                f"cache table (schema {cache_schema}) {table + '...'!r} would be {length} "
                f"characters, longer than PostgreSQL's {names.PG_MAX_IDENTIFIER}-character "
                "limit for a relation name",
                leave_out,
            )
        names.check_relation_name(staging, "dbt staging model", fix)
        names.check_relation_name(reporting, "dbt reporting model", fix)


def _check_cache_tables_free(
    project: Project,
    dbt: DbtProject,
    doc: dict,
    location: str,
    connector_name: str,
    cache_schema: str,
    streams: list[DiscoveredStream],
) -> None:
    """Every connector writes <cache schema>.<stream>, unprefixed, so a table has one owner: the
    location whose dbt source reads it. A second connector with the same stream would overwrite
    (or merge into) that table under the first one's models."""
    readers = {
        (table.schema, table.identifier): source
        for source in dbt.sources.values()
        for table in source.tables
    }
    for stream in streams:
        table = dbt_codegen.cache_table_name(stream.name)
        source = readers.get((cache_schema, table))
        if source is None:
            continue
        entries = entries_by_name(doc)
        owner = owner_of_dbt_source(doc, source.name) or (
            (source.name, connector_of(entries[source.name])) if source.name in entries else None
        )
        if owner is None:
            owned_by = f"dbt source {source.name!r} ({project.relative(source.file)})"
            remove = f"remove or rename that source's table {stream.name!r}"
        else:
            owner_location, owner_connector = owner
            owned_by = (
                f"connector {owner_connector or '(unknown)'} of code location {owner_location} "
                f"(dbt source {source.name!r})"
            )
            remove = f"remove it first: dataplatform connector remove {owner_location}"
        raise LifecycleError(
            f"stream {stream.name!r} of {connector_name} would be synced into "
            f"{cache_schema}.{table}, which already belongs to {owned_by}; two connectors "
            "would write one table",
            f"leave the stream out (--streams with the others), or {remove}, then add "
            f"{location} again",
        )


def plan_add(
    project: Project,
    location: str,
    connector_yaml: Path | None = None,
    streams: list[str] | None = None,
    port: int | None = None,
    discover: Discover = check_and_discover,
) -> AddPlan:
    names.check_location_name(location)
    doc = read_document(project)
    if location in entries_by_name(doc):
        raise LifecycleError(
            f"code location {location!r} already exists in {project.code_locations}",
            f"choose another name, or remove it first: dataplatform connector remove {location}",
        )
    package = project.dagster_code / location
    if package.exists():
        raise LifecycleError(
            f"{package} already exists",
            f"choose another name, or delete the directory (dataplatform connector remove "
            f"{location})",
        )
    dbt = read_project(project.dbt_dir)
    sources_file = project.models_dir / f"{location}_sources.yml"
    if location in dbt.sources or sources_file.exists():
        raise LifecycleError(
            f"a dbt source named {location!r} (or {sources_file.name}) already exists",
            "choose another location name, or remove the old dbt files",
        )

    yaml_path, copy_yaml = _connector_file(project, location, connector_yaml)
    try:
        connector = load_connector_file(yaml_path)
    except ConnectorConfigError as exc:
        raise LifecycleError(str(exc)) from None  # names the file, the field and the fix
    chosen_port = choose_port(doc, port, project.code_locations)

    txn = FileTransaction(project.root)
    if copy_yaml:
        _check_unique_connector_name(project, connector)
        _copy_connector_files(project, connector, txn)

    discovered = discover(connector, streams)

    from pyairbyte.utils.common_cache import CACHE_CONFIGS

    cache_schema = CACHE_CONFIGS["default"]["schema_name"]
    _check_cache_tables_free(project, dbt, doc, location, connector.name, cache_schema, discovered)
    pairs = _model_names(location, discovered, set(dbt.models))
    _check_relation_lengths(location, cache_schema, discovered, pairs)
    # The cache's column names: an existing table's stored map and columns (a connector added
    # again after a remove that kept the data), else the names a new table gets.
    tables = {s.name: dbt_codegen.cache_table_name(s.name) for s in discovered}
    cache, unreachable = cache_tables.read_cache_tables(
        [(cache_schema, t) for t in tables.values()]
    )
    try:
        stream_models = [
            dbt_codegen.plan_stream_models(
                stream,
                staging,
                reporting,
                cache.get((cache_schema, tables[stream.name])) if cache else None,
            )
            for stream, (staging, reporting) in zip(discovered, pairs, strict=True)
        ]
    except ValueError as exc:
        raise LifecycleError(str(exc), "leave that stream out (--streams ...)") from None
    spec = LocationSpec(
        location=location,
        connector_name=connector.name,
        streams=[s.name for s in discovered],
        port=chosen_port,
        dbt_source=location,
        staging_models=[m.staging_model for m in stream_models],
        reporting_models=[m.reporting_model for m in stream_models],
        cache_schema=cache_schema,
    )

    for path, text in location_files(project.dagster_code, spec).items():
        txn.write(path, text)
    txn.write(
        sources_file,
        dbt_codegen.render_sources_yaml(
            location,
            connector.name,
            location,
            cache_schema,
            spec.sync_asset,
            stream_models,
            freshness=connector.automation.freshness,
        ),
    )
    for models in stream_models:
        txn.write(
            project.models_dir / "staging" / f"{models.staging_model}.sql",
            dbt_codegen.render_staging_sql(location, location, models),
        )
        txn.write(
            project.models_dir / f"{models.reporting_model}.sql",
            dbt_codegen.render_reporting_sql(location, models),
        )

    description = connector.description or f"{connector.name} sync and dbt transform"
    doc["code_locations"].append(
        new_entry(location, chosen_port, description, connector.name, location)
    )
    txn.write(project.code_locations, render_document(doc))
    for path, text in derived_contents(project, doc).items():
        txn.write(path, text)

    plan = AddPlan(project, spec, connector, txn)
    if connector.env_vars:
        plan.notes.append(
            f"the YAML reads env {', '.join(connector.env_vars)}: set them wherever the platform "
            "runs (docker-compose.yaml environment, or the shell that runs `make up`)"
        )
    if any(m.staging_model.startswith(f"staging_{location}_") for m in stream_models):
        plan.notes.append("dbt model names are prefixed with the location (a name was taken)")
    plan.notes += _cache_notes(location, cache_schema, stream_models, cache, unreachable)
    return plan


def _cache_notes(
    location: str,
    cache_schema: str,
    stream_models: list[dbt_codegen.StreamModels],
    cache: dict[tuple[str, str], cache_tables.CacheTable] | None,
    unreachable: str,
) -> list[str]:
    """What the plan should say about the cache tables its models were generated over."""
    refresh = f"`{dbt_codegen.REFRESH_COMMAND} {location}`"
    if cache is None:
        return [
            f"{unreachable}: the staging models use the column names a new cache table gets; "
            f"if the tables already exist, run {refresh} once PostgreSQL is reachable"
        ]
    notes = []
    for models in stream_models:
        table = cache.get((cache_schema, models.table))
        if table is None or not table.exists:
            continue
        notes.append(
            f"cache table {table.qualified} already exists: {models.staging_model} selects its "
            "columns as its column map names them"
        )
        if models.pending:
            notes.append(
                f"{table.qualified} has no column yet for {', '.join(models.pending)}: the next "
                f"sync adds them; then run {refresh}"
            )
    return notes


def enabled_modules(project: Project, exclude: str) -> list[str]:
    doc = read_document(project)
    return [
        e["module"]
        for name, e in entries_by_name(doc).items()
        if name != exclude and e.get("enabled", True) and isinstance(e.get("module"), str)
    ]


def _start_dbt_parse(project: Project, target: str) -> subprocess.Popen:
    """`dbt parse` of the project, started; its scratch output goes to `target`."""
    from dataplatform.dbt import settings as dbt_settings
    from dataplatform.dbt.manifest import dbt_executable

    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(dbt_settings.profiles_dir()),
        "DBT_TARGET_PATH": target,  # never touch the project's own target/ or logs/
        "DBT_LOG_PATH": target,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.Popen(
        [dbt_executable(), "parse", "--project-dir", str(project.dbt_dir), "--quiet"],
        cwd=project.dbt_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _scratch() -> Path:
    scratch = settings.project_dir() / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch


def dbt_parse_problems(project: Project) -> list[str]:
    """[] when dbt parses the project as it is on disk, else the failure (`refresh-staging`)."""
    with tempfile.TemporaryDirectory(dir=_scratch(), prefix="dbt-parse-") as target:
        parse = _start_dbt_parse(project, target)
        output, _ = parse.communicate(timeout=300)
    return [f"dbt parse failed:\n{output[-3000:]}"] if parse.returncode != 0 else []


def verify(project: Project, location: str) -> list[str]:
    """Problems with the written files: the location must load, dbt must parse the project."""
    problems = []
    with tempfile.TemporaryDirectory(dir=_scratch(), prefix="dbt-parse-") as target:
        parse = _start_dbt_parse(project, target)
        # The new location, and every enabled one: new dbt models and sources change what
        # manifest-driven locations (dbt_poc) load. Runs while dbt parses.
        module = f"dagster_code.{location}"
        results = probe_modules([module, *enabled_modules(project, location)], project.root)
        output, _ = parse.communicate(timeout=300)
    result = results[module]
    if not result.get("ok"):
        problems.append(f"{module} does not load: {result.get('error')}")
    elif result.get("file") and project.dagster_code.resolve() not in Path(result["file"]).parents:
        problems.append(
            f"{module} was imported from {result['file']}, not from {project.dagster_code}; "
            "run the command from the environment that serves this repository"
        )
    for other, outcome in results.items():
        if other != module and not outcome.get("ok"):
            problems.append(f"with the new files, {other} no longer loads: {outcome.get('error')}")
    if parse.returncode != 0:
        problems.append(f"dbt parse failed:\n{output[-3000:]}")
    return problems


def apply_add(plan: AddPlan, verify_result: bool = True) -> None:
    """Write the plan; verify; roll everything back if anything fails."""
    with plan.txn.applied():
        if verify_result:
            problems = verify(plan.project, plan.spec.location)
            if problems:
                raise LifecycleError(
                    "the generated files did not verify, so every change was rolled back:\n"
                    + "\n".join(f"- {p}" for p in problems),
                    "fix the cause above and run the command again",
                )
