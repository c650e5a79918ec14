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
        ...descriptions
    )

Automation comes from the connector YAML (`schedule:`, `freshness:`, `retry:`; see
lib/automation.py), so the YAML is the one place it is written; `automation=` overrides it.

From that the factory builds, once per location object, one asset per table:
- `sync_asset`: a subsettable multi-asset, op `sync_asset_name`, one asset per stream keyed by its
  cache table (`pyairbyte_cache/products`); a run syncs only the selected streams with
  `sync_connector`, and each table is materialized with Dagster's standard table metadata (row
  count, column schema, table name). A failed sync raises `dagster.Failure` with its metadata,
  retried by the YAML's `retry:` only when the error is transient;
- `transform_asset`: `@dbt_assets`, op `transform_asset_name`, one asset per dbt model the
  connector owns (`source:<dbt_source>+`, minus models that also read another connector's
  source: those are dbt_poc's); dbt tests, source tests included, are asset checks;
- `job`: both, tagged with the connector for the instance's concurrency limit;
- `schedules`: the job on the YAML's `schedule:`, STOPPED unless it says `status: running`;
- `freshness_checks` and `sensors`: from the YAML's `freshness:`, on the sync's assets;
- `defs`: all of it, with `in_process_executor` and the `dbt` resource.

Each location's package keeps the guide's files (`assets/sync_assets.py`, `assets/dbt_assets.py`,
`jobs/pipeline_jobs.py`) as one-line exports of these objects, so the guide's import paths work.
Nothing here imports airbyte or pandas: the sync imports them when it runs, never a code server.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from dagster import (
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Definitions,
    ScheduleDefinition,
    SensorDefinition,
    define_asset_job,
    in_process_executor,
    multi_asset,
)
from dagster_dbt import DbtCliResource, dbt_assets

from dagster_code.lib.automation import freshness_checks, job_schedules, sync_retry_policy
from dagster_code.lib.dbt import (
    PlatformDbtTranslator,
    connector_selection,
    dbt_resource,
    prepared_manifest,
    shared_models,
    skip_unsynced_sources,
    sources_read,
)
from dagster_code.lib.sync import connector_tags, retryable_failure, table_results
from pyairbyte.utils.connector_automation import Automation, ScheduleSettings, load_automation
from pyairbyte.utils.connector_state import cache_table_name

if TYPE_CHECKING:
    # What define_asset_job returns; dagster does not export the type.
    from dataplatform.runtime.dagster_internals import UnresolvedAssetJobDefinition

# The schema every connector location syncs into (the default cache), and the first part of
# each cache table's asset key.
CACHE_SCHEMA = "pyairbyte_cache"


def cache_table_key(stream: str) -> AssetKey:
    """The one asset key of a stream's cache table, e.g. pyairbyte_cache/products."""
    return AssetKey([CACHE_SCHEMA, cache_table_name(stream)])


def _definitions(
    assets: list[AssetsDefinition],
    job: "UnresolvedAssetJobDefinition",
    schedules: list[ScheduleDefinition],
    asset_checks: Sequence[AssetChecksDefinition] = (),
    sensors: Sequence[SensorDefinition] = (),
) -> Definitions:
    return Definitions(
        assets=assets,
        asset_checks=asset_checks,
        jobs=[job],
        schedules=schedules,
        sensors=sensors,
        resources={"dbt": dbt_resource()},
        # Steps run one after another in the run worker: a process per step would re-import
        # dagster, dbt and airbyte each time (most of a run's orchestration overhead).
        executor=in_process_executor,
    )


def dbt_models_asset(
    name: str,
    description: str,
    translator: PlatformDbtTranslator,
    select: str,
    sources: Collection[str],
    exclude: str | None = None,
) -> AssetsDefinition:
    """Every dbt model in `select` (minus `exclude`) as its own asset, built by one `dbt build`
    per run; dbt tests are asset checks. `sources`: the dbt sources those models read."""

    def models(context: AssetExecutionContext, dbt: DbtCliResource):
        # A connector that has never synced has no cache tables yet: leave its sources out.
        skip = skip_unsynced_sources(context, prepared_manifest(), sources)
        yield from dbt.cli(["build", *skip], context=context).stream()

    models.__doc__ = description  # the op's description in the UI
    return dbt_assets(
        manifest=prepared_manifest(),
        select=select,
        exclude=exclude,
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
    # None: the connector YAML's schedule:, freshness: and retry: (what locations declare).
    automation: Automation | None = None

    def __post_init__(self):
        object.__setattr__(self, "streams", tuple(self.streams))

    @cached_property
    def automation_settings(self) -> Automation:
        """The automation in effect: the override, else the connector YAML's (read once, when
        the location loads; a bad `schedule:` stops the load with the file and field)."""
        return self.automation if self.automation is not None else load_automation(self.connector)

    @cached_property
    def table_keys(self) -> dict[str, AssetKey]:
        """Stream -> the asset key of its cache table."""
        return {stream: cache_table_key(stream) for stream in self.streams}

    @cached_property
    def sync_asset(self) -> AssetsDefinition:
        connector, keys = self.connector, self.table_keys
        specs = [
            AssetSpec(
                key=key,
                group_name=self.name,
                kinds={"airbyte", "postgres"},
                description=f"Stream {stream} of {connector}, synced by PyAirbyte into "
                f"{CACHE_SCHEMA}.{key.path[-1]}.",
                metadata={"dagster/table_name": f"{CACHE_SCHEMA}.{key.path[-1]}"},
            )
            for stream, key in keys.items()
        ]

        @multi_asset(
            name=self.sync_asset_name,
            specs=specs,
            can_subset=True,
            description=self.sync_description,
            retry_policy=sync_retry_policy(self.automation_settings.retry),
        )
        def sync(context: AssetExecutionContext):
            # Imported here: the module is light, but what it reaches is not for a code server.
            from pyairbyte.utils.pyairbyte_sync import sync_connector

            selected = {s: k for s, k in keys.items() if k in context.selected_asset_keys}
            with retryable_failure():  # only a transient error may reach the retry policy
                result = sync_connector(
                    connector, list(selected), progress=context.log.info, run_id=context.run_id
                )
                yield from table_results(context, result, selected)

        return sync

    @cached_property
    def transform_asset(self) -> AssetsDefinition:
        select, exclude = connector_selection(prepared_manifest(), self.dbt_source)
        return dbt_models_asset(
            self.transform_asset_name,
            self.transform_description,
            PlatformDbtTranslator(group_name=self.name, source_tests_as_checks=True),
            select=select,
            sources=[self.dbt_source],
            exclude=exclude,
        )

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
        return job_schedules(self.job, self.automation_settings.schedule)

    @cached_property
    def _freshness(self) -> tuple[list[AssetChecksDefinition], list[SensorDefinition]]:
        return freshness_checks(self.name, self.sync_asset, self.automation_settings.freshness)

    @cached_property
    def freshness_checks(self) -> list[AssetChecksDefinition]:
        return self._freshness[0]

    @cached_property
    def sensors(self) -> list[SensorDefinition]:
        return self._freshness[1]

    @cached_property
    def defs(self) -> Definitions:
        return _definitions(
            [self.sync_asset, self.transform_asset],
            self.job,
            self.schedules,
            asset_checks=self.freshness_checks,
            sensors=self.sensors,
        )


@dataclass(frozen=True)
class DbtModelsLocation:
    """The dbt models no connector location owns (dbt_poc): those that read several connectors'
    sources, such as cross-connector reporting. No connector, no sync of its own.

    Their upstream models and sources are assets of the connector locations, referenced by key,
    so lineage crosses locations in the UI.
    """

    name: str
    models_asset_name: str
    models_description: str
    job_name: str
    job_description: str
    schedule: str | None = None

    @cached_property
    def models(self) -> list[str]:
        """The models it builds; none when every model belongs to one connector location."""
        return shared_models(prepared_manifest())

    @cached_property
    def models_asset(self) -> AssetsDefinition:
        models = self.models
        if not models:
            raise ValueError(
                f"code location {self.name}: every dbt model belongs to one connector location, "
                "so it has no models asset; add a model that reads several connectors' models"
            )
        return dbt_models_asset(
            self.models_asset_name,
            self.models_description,
            PlatformDbtTranslator(group_name=self.name),
            select=" ".join(models),
            sources=sources_read(prepared_manifest(), models),
        )

    @cached_property
    def job(self) -> "UnresolvedAssetJobDefinition":
        return define_asset_job(
            name=self.job_name, selection=[self.models_asset], description=self.job_description
        )

    @cached_property
    def schedules(self) -> list[ScheduleDefinition]:
        cron = self.schedule
        return job_schedules(self.job, ScheduleSettings(cron) if cron is not None else None)

    @cached_property
    def defs(self) -> Definitions:
        if not self.models:  # loads, and shows an empty location, rather than failing
            return Definitions(resources={"dbt": dbt_resource()})
        return _definitions([self.models_asset], self.job, self.schedules)
