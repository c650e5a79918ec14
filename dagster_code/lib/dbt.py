"""dbt wiring shared by the code locations: the CLI resource, the prepared manifest, the
translator that maps dbt sources to the sync assets, and a `dbt build` helper for plain assets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey, Failure, MaterializeResult, MetadataValue
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource

from pyairbyte import settings
from pyairbyte.utils.dbt_manifest import dbt_executable, ensure_manifest


def dbt_resource() -> DbtCliResource:
    """The dbt CLI resource: repo's dbt_models and profiles.yml, dbt from wherever the venv is."""
    return DbtCliResource(
        project_dir=str(settings.dbt_project_dir()),
        profiles_dir=str(settings.dbt_profiles_dir()),
        dbt_executable=dbt_executable(),
    )


def prepared_manifest() -> Path:
    """target/manifest.json, parsed once (again only when a model file changed)."""
    return ensure_manifest()


class PlatformDbtTranslator(DagsterDbtTranslator):
    """Model keys are model names, optionally prefixed; sources take the key their YAML declares
    in `meta.dagster.asset_key`.

    The sources YAML says which sync asset produces each cache table, so the asset graph shows
    sync -> staging -> reporting. A prefix keeps one location's model keys from colliding with
    another location that materializes the same models.
    """

    def __init__(
        self,
        key_prefix: Sequence[str] = (),
        group_name: str | None = None,
        source_tests_as_checks: bool = False,
    ):
        # Source tests become checks on the sync asset; only the location that owns that asset
        # should enable this, or two locations would define the same check.
        super().__init__(
            settings=DagsterDbtTranslatorSettings(
                enable_asset_checks=True,
                enable_source_tests_as_checks=source_tests_as_checks,
                # A connector with several streams has several dbt sources, all produced by its
                # one sync asset, so they share that asset key.
                enable_duplicate_source_asset_keys=True,
            )
        )
        self._key_prefix = list(key_prefix)
        self._group_name = group_name

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        # A model's key is its name (staging_products), not dbt's default schema/name.
        return AssetKey([*self._key_prefix, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return self._group_name or super().get_group_name(dbt_resource_props)


def unsynced_sources(manifest_path: Path) -> list[tuple[str, str]]:
    """(dbt source, cache table) for every dbt source whose table does not exist yet.

    A connector added to the platform declares its dbt sources at once, but its cache tables
    only appear with its first sync. Until then its source tests, and the models built on them,
    can only fail. One catalog query against the database dbt uses (POSTGRES_*).
    """
    import psycopg2

    sources = json.loads(Path(manifest_path).read_text()).get("sources", {}).values()
    wanted = {
        f"{s['source_name']}.{s['name']}": f"{s['schema']}.{s.get('identifier') or s['name']}"
        for s in sources
    }
    if not wanted:
        return []
    names = sorted(wanted)
    connection = psycopg2.connect(**settings.postgres_settings().psycopg2_kwargs())
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name FROM unnest(%s::text[], %s::text[]) AS t(name, rel) "
                "WHERE to_regclass(quote_ident(split_part(rel, '.', 1)) || '.' || "
                "quote_ident(split_part(rel, '.', 2))) IS NULL",
                (names, [wanted[n] for n in names]),
            )
            missing = [row[0] for row in cursor.fetchall()]
    finally:
        connection.close()
    return [(name, wanted[name]) for name in sorted(missing)]


def skip_unsynced_sources(context: AssetExecutionContext, manifest_path: Path) -> list[str]:
    """`dbt build` arguments that leave out sources whose table does not exist yet, with their
    tests and every model downstream; logs a warning naming each. Empty when all exist."""
    missing = unsynced_sources(manifest_path)
    for source, table in missing:
        context.log.warning(
            f"dbt source {source}: its cache table {table} does not exist yet (its connector "
            "has not synced). Skipping its tests and the models built on it until the first "
            "sync; run the connector's job to create it."
        )
    if not missing:
        return []
    return ["--exclude", " ".join(f"source:{source}+" for source, _ in missing)]


def run_dbt_build(
    context: AssetExecutionContext, dbt: DbtCliResource, select: str
) -> MaterializeResult:
    """`dbt build --select <select>` (models and their tests) for a plain, non-dbt asset.

    No `dbt parse` first: the manifest is prepared once, and dbt's partial parsing reuses it.
    dbt runs as a plain subprocess with the resource's settings: `DbtCliResource.cli` would also
    load dbt's adapter into the run worker (for @dbt_assets column metadata), which costs a plain
    asset 3-7 s a run (bench/transform_overhead.py). Each run gets its own target path, so two
    runs never overwrite each other's artifacts. Streams dbt's log lines into the run log; the
    result carries the outcome as metadata, and a failed build raises `Failure` with it.
    """
    project_dir = Path(dbt.project_dir)
    target_path = project_dir / "target" / f"run-{context.run_id[:8]}-{uuid.uuid4().hex[:6]}"
    target_path.mkdir(parents=True)
    partial_parse = project_dir / "target" / "partial_parse.msgpack"
    if partial_parse.exists():
        shutil.copy(partial_parse, target_path / partial_parse.name)
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(dbt.profiles_dir or project_dir),
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(target_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    command = [dbt.dbt_executable, "--log-format", "json", "build", "--select", select]
    context.log.info(f"dbt build --select {select}")
    with subprocess.Popen(
        command,
        cwd=project_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        for line in process.stdout:
            try:
                message = json.loads(line).get("info", {}).get("msg")
            except json.JSONDecodeError:
                message = line.rstrip()
            if message:
                context.log.info(message)
    run_results = target_path / "run_results.json"
    results = json.loads(run_results.read_text())["results"] if run_results.exists() else []
    shutil.rmtree(target_path, ignore_errors=True)

    by_status: dict[str, list[str]] = {}
    for result in results:
        by_status.setdefault(result["status"], []).append(result["unique_id"])
    models = sorted(
        r["unique_id"].split(".")[-1] for r in results if r["unique_id"].startswith("model.")
    )
    failed = by_status.get("error", []) + by_status.get("fail", [])
    succeeded = process.returncode == 0
    metadata = {
        "status": MetadataValue.text("success" if succeeded else "error"),
        "dbt_select": MetadataValue.text(select),
        "models": MetadataValue.json(models),
        "results_by_status": MetadataValue.json(
            {status: len(ids) for status, ids in by_status.items()}
        ),
        "failed": MetadataValue.json(failed),
    }
    if not succeeded:
        raise Failure(
            description=f"dbt build --select {select} failed (exit {process.returncode}): "
            f"{', '.join(failed) or 'see the dbt log above'}",
            metadata=metadata,
        )
    return MaterializeResult(metadata=metadata)
