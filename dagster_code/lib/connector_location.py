"""A code location as a declaration: the factory behind every connector location (and dbt_poc).

A connector location is always the same pipeline, so its package holds data, not code:

    location = ConnectorLocation(
        name="sample_product_sync",            # the location, and the group of its assets
        connector="sample-connector",          # the connector YAML's `name:`
        streams=["products"],                  # land in pyairbyte_cache.<stream>
        dbt_source="sample_connector",         # the dbt source that reads those tables
        sync_asset_name="sync_sample_connector",
        transform_asset_name="transform_sample_product_data",
        job_name="sample_product_sync_pipeline",
        ...descriptions, and optionally a cron `schedule`
    )

From that the factory builds, once per location object:
- `sync_asset`: `sync_connector(connector, streams)` into the default cache; its result dict becomes
  materialization metadata, and a failed sync raises `dagster.Failure` with that metadata;
- `transform_asset`: with `transform="dbt_build"` one plain asset that runs
  `dbt build --select source:<dbt_source>+` (cheapest per run, see `lib/dbt.py`); with
  `transform="dbt_assets"` a `@dbt_assets` multi-asset, one asset per model and the dbt tests
  (source tests too) as asset checks;
- `job`: both assets, tagged with the connector for the instance's concurrency limit;
- `schedules`: the job on `schedule`, when one is declared;
- `defs`: all of it, with `in_process_executor` and the `dbt` resource.

Each location's package keeps the guide's files (`assets/sync_assets.py`, `assets/dbt_assets.py`,
`jobs/pipeline_jobs.py`) as one-line exports of these objects, so the guide's import paths work.
Nothing here imports airbyte or pandas: the sync imports them when it runs, never a code server.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Definitions,
    MaterializeResult,
    ScheduleDefinition,
    asset,
    define_asset_job,
    in_process_executor,
)
from dagster_dbt import DbtCliResource, dbt_assets

from dagster_code.lib.dbt import (
    PlatformDbtTranslator,
    dbt_resource,
    prepared_manifest,
    run_dbt_build,
    skip_unsynced_sources,
)
from dagster_code.lib.sync import connector_tags, materialize_sync_result

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

Transform = Literal["dbt_build", "dbt_assets"]


def _definitions(
    assets: list[AssetsDefinition],
    job: "UnresolvedAssetJobDefinition",
    schedules: list[ScheduleDefinition],
) -> Definitions:
    return Definitions(
        assets=assets,
        jobs=[job],
        schedules=schedules,
        resources={"dbt": dbt_resource()},
        # Steps run one after another in the run worker: a process per step would re-import
        # dagster, dbt and airbyte each time (most of a run's orchestration overhead).
        executor=in_process_executor,
    )


def _schedules(job: "UnresolvedAssetJobDefinition", cron: str | None) -> list[ScheduleDefinition]:
    if cron is None:
        return []
    return [ScheduleDefinition(name=f"{job.name}_schedule", cron_schedule=cron, job=job)]


def dbt_models_asset(
    name: str,
    description: str,
    translator: PlatformDbtTranslator,
    select: str = "fqn:*",
) -> AssetsDefinition:
    """Every dbt model in `select` as its own asset, built by one `dbt build` per run."""

    def models(context: AssetExecutionContext, dbt: DbtCliResource):
        # A connector that has never synced has no cache tables yet: leave its sources out.
        skip = skip_unsynced_sources(context, prepared_manifest())
        yield from dbt.cli(["build", *skip], context=context).stream()

    models.__doc__ = description  # the op's description in the UI
    return dbt_assets(
        manifest=prepared_manifest(),
        select=select,
        name=name,
        dagster_dbt_translator=translator,
    )(models)


@dataclass(frozen=True)
class ConnectorLocation:
    """One connector -> PyAirbyte cache -> dbt pipeline (see the module docstring)."""

    name: str
    connector: str
    streams: Sequence[str]
    dbt_source: str
    sync_asset_name: str
    transform_asset_name: str
    job_name: str
    sync_description: str
    transform_description: str
    job_description: str
    transform: Transform = "dbt_build"
    schedule: str | None = None  # cron, e.g. "0 6 * * *"

    def __post_init__(self):
        object.__setattr__(self, "streams", tuple(self.streams))

    @cached_property
    def sync_asset(self) -> AssetsDefinition:
        connector, streams = self.connector, list(self.streams)

        @asset(
            name=self.sync_asset_name,
            group_name=self.name,
            kinds={"airbyte", "postgres"},
            description=self.sync_description,
        )
        def sync(context: AssetExecutionContext) -> MaterializeResult:
            # Imported here: the module is light, but what it reaches is not for a code server.
            from pyairbyte.utils.pyairbyte_sync import sync_connector

            return materialize_sync_result(
                context, sync_connector(connector, streams, progress=context.log.info)
            )

        return sync

    @cached_property
    def transform_asset(self) -> AssetsDefinition:
        if self.transform == "dbt_assets":
            return dbt_models_asset(
                self.transform_asset_name,
                self.transform_description,
                PlatformDbtTranslator(group_name=self.name, source_tests_as_checks=True),
                select=f"source:{self.dbt_source}+",
            )
        select = f"source:{self.dbt_source}+"

        @asset(
            name=self.transform_asset_name,
            group_name=self.name,
            deps=[self.sync_asset_name],
            kinds={"dbt", "postgres"},
            description=self.transform_description,
        )
        def transform(context: AssetExecutionContext, dbt: DbtCliResource) -> MaterializeResult:
            return run_dbt_build(context, dbt, select)

        return transform

    @cached_property
    def job(self) -> "UnresolvedAssetJobDefinition":
        return define_asset_job(
            name=self.job_name,
            selection=[self.sync_asset, self.transform_asset],
            description=self.job_description,
            tags=connector_tags(self.connector),
        )

    @cached_property
    def schedules(self) -> list[ScheduleDefinition]:
        return _schedules(self.job, self.schedule)

    @cached_property
    def defs(self) -> Definitions:
        return _definitions([self.sync_asset, self.transform_asset], self.job, self.schedules)


@dataclass(frozen=True)
class DbtModelsLocation:
    """Every dbt model of the project, built together (dbt_poc): no connector, no sync of its own.

    dbt sources map to the sync assets of the connector locations, so the graph shows where the
    data comes from. The key prefix keeps its model keys apart from a connector location that
    materializes the same models under their plain names.
    """

    name: str
    models_asset_name: str
    models_description: str
    job_name: str
    job_description: str
    key_prefix: Sequence[str] = ()
    schedule: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "key_prefix", tuple(self.key_prefix))

    @cached_property
    def models_asset(self) -> AssetsDefinition:
        return dbt_models_asset(
            self.models_asset_name,
            self.models_description,
            PlatformDbtTranslator(key_prefix=self.key_prefix, group_name=self.name),
        )

    @cached_property
    def job(self) -> "UnresolvedAssetJobDefinition":
        return define_asset_job(
            name=self.job_name, selection=[self.models_asset], description=self.job_description
        )

    @cached_property
    def schedules(self) -> list[ScheduleDefinition]:
        return _schedules(self.job, self.schedule)

    @cached_property
    def defs(self) -> Definitions:
        return _definitions([self.models_asset], self.job, self.schedules)
