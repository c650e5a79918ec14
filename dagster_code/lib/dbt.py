"""dbt wiring shared by the code locations: the CLI resource, the prepared manifest, the
translator that maps dbt sources to the cache tables' assets, which models each location owns, and
the exclusion of sources whose cache table does not exist yet.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource

from dagster_code.lib.dbt_internals import SkipVersionProbe, check_dagster_dbt_version
from dataplatform.dbt import settings as dbt_settings
from dataplatform.dbt.manifest import dbt_executable, ensure_manifest
from pyairbyte.utils import pg


class PlatformDbtCliResource(SkipVersionProbe):
    """`DbtCliResource` without the two costs it adds to every `dbt build` before dbt starts
    (bench/transform_overhead.py: 1.8x a bare `dbt build` with them, the target is 1.2x): the
    `dbt --version` probe and the adapter load (lib/dbt_internals.py). In a warm run worker dbt
    runs as a fork of the worker (lib/dbt_fork.py).
    """

    def cli(self, args: Sequence[str], **kwargs: Any):  # type: ignore[override]
        """As DbtCliResource.cli; in a warm run worker dbt runs as its fork (lib/dbt_fork.py)."""
        from dagster_code.lib import dbt_fork

        if not dbt_fork.available():
            return super().cli(args, **kwargs)
        dbt_fork.install()
        token = dbt_fork.use_fork.set(True)
        try:
            return super().cli(args, **kwargs)
        finally:
            dbt_fork.use_fork.reset(token)


def dbt_resource() -> DbtCliResource:
    """The dbt CLI resource: repo's dbt_models and profiles.yml, dbt from wherever the venv is."""
    check_dagster_dbt_version()
    return PlatformDbtCliResource(
        project_dir=str(dbt_settings.project_dir()),
        profiles_dir=str(dbt_settings.profiles_dir()),
        dbt_executable=dbt_executable(),
    )


def prepared_manifest() -> Path:
    """target/manifest.json, parsed once (again only when a model file changed)."""
    return ensure_manifest()


class PlatformDbtTranslator(DagsterDbtTranslator):
    """Model keys are model names; sources take the key their YAML declares in
    `meta.dagster.asset_key`: the sync asset of their cache table (`pyairbyte_cache/<table>`).

    So the asset graph shows table -> staging -> reporting across locations, and each table has
    one key in the whole workspace.
    """

    def __init__(self, group_name: str | None = None, source_tests_as_checks: bool = False):
        # Source tests become checks on the sync assets; only the location that owns those
        # assets should enable this, or two locations would define the same check.
        super().__init__(
            settings=DagsterDbtTranslatorSettings(
                enable_asset_checks=True,
                enable_source_tests_as_checks=source_tests_as_checks,
            )
        )
        self._group_name = group_name

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        # A model's key is its name (staging_products), not dbt's default schema/name.
        return AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return self._group_name or super().get_group_name(dbt_resource_props)


def model_sources(manifest: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Model name -> the dbt sources it reads, directly or through other models."""
    nodes, sources = manifest.get("nodes", {}), manifest.get("sources", {})
    memo: dict[str, frozenset[str]] = {}

    def upstream(unique_id: str) -> frozenset[str]:
        if unique_id in sources:
            return frozenset({sources[unique_id]["source_name"]})
        if unique_id not in memo:
            memo[unique_id] = frozenset()  # a cycle cannot parse; this only stops recursion
            parents = nodes.get(unique_id, {}).get("depends_on", {}).get("nodes", [])
            memo[unique_id] = frozenset().union(*(upstream(p) for p in parents))
        return memo[unique_id]

    return {
        node["name"]: upstream(unique_id)
        for unique_id, node in nodes.items()
        if node.get("resource_type") == "model"
    }


def connector_selection(manifest_path: Path, dbt_source: str) -> tuple[str, str | None]:
    """(select, exclude) for the models a connector location owns: every model downstream of its
    dbt source that reads no other source. A model that joins two connectors' data belongs to
    dbt_poc (`shared_models`), so each model is materialized by one location."""
    manifest = json.loads(Path(manifest_path).read_text())
    others = sorted({s["source_name"] for s in manifest.get("sources", {}).values()} - {dbt_source})
    return f"source:{dbt_source}+", " ".join(f"source:{o}+" for o in others) or None


def sources_read(manifest_path: Path, models: Collection[str]) -> set[str]:
    """The dbt sources that `models` read, directly or through other models."""
    manifest = json.loads(Path(manifest_path).read_text())
    read = model_sources(manifest)
    return set().union(*(read.get(m, frozenset()) for m in models))


def shared_models(manifest_path: Path) -> list[str]:
    """Models no connector location owns: those reading several dbt sources, or none."""
    manifest = json.loads(Path(manifest_path).read_text())
    return sorted(name for name, read in model_sources(manifest).items() if len(read) != 1)


def unsynced_sources(
    manifest_path: Path, source_names: Collection[str] | None = None
) -> list[tuple[str, str]]:
    """(dbt source, cache table) for every dbt source (of `source_names`, default all) whose
    table does not exist yet.

    A connector added to the platform declares its dbt sources at once, but its cache tables
    only appear with its first sync. Until then its source tests, and the models built on them,
    can only fail. One catalog query against the database dbt uses (POSTGRES_*).
    """

    sources = json.loads(Path(manifest_path).read_text()).get("sources", {}).values()
    wanted = {
        f"{s['source_name']}.{s['name']}": f"{s['schema']}.{s.get('identifier') or s['name']}"
        for s in sources
        if source_names is None or s["source_name"] in source_names
    }
    if not wanted:
        return []
    names = sorted(wanted)
    connection = pg.connect()
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


def skip_unsynced_sources(
    context: AssetExecutionContext, manifest_path: Path, source_names: Collection[str] | None = None
) -> list[str]:
    """`dbt build` arguments that leave out sources (of `source_names`) whose table does not
    exist yet, with their tests and every model downstream; logs a warning naming each. Empty
    when all exist."""
    missing = unsynced_sources(manifest_path, source_names)
    for source, table in missing:
        context.log.warning(
            f"dbt source {source}: its cache table {table} does not exist yet (its connector "
            "has not synced). Skipping its tests and the models built on it until the first "
            "sync; run the connector's job to create it."
        )
    if not missing:
        return []
    return ["--exclude", " ".join(f"source:{source}+" for source, _ in missing)]
