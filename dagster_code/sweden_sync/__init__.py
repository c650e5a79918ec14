"""sweden_sync: the guide's "Sweden" cache pattern (port 4269, enabled: false until configured).

A second named cache, the `sweden_cache` resource (common_cache's "sweden": SWEDEN_POSTGRES_*
falling back to POSTGRES_*, schema SWEDEN_CACHE_SCHEMA, default pyairbyte_cache_sweden),
receives the sample products connector, and a cleanup asset upstream of the sync drops the
connector's tables (and its PyAirbyte state) there first, so every run is a fresh full load.

Configure: SAMPLE_API_URL (the products API, read by the connector YAML), and SWEDEN_POSTGRES_* /
SWEDEN_CACHE_SCHEMA if the Sweden cache lives elsewhere than the default one. All of them have
defaults, so the resource binds no EnvVar; a test passes a `PostgresCacheResource` of its own.
"""

from dagster import Definitions, in_process_executor

from dagster_code.lib.resources import PostgresCacheResource

from .assets import cleanup_airbyte_cache_tables_sweden, sample_connector_sync_assets_sweden
from .jobs import sweden_sync_pipeline_job

defs = Definitions(
    assets=[cleanup_airbyte_cache_tables_sweden, sample_connector_sync_assets_sweden],
    jobs=[sweden_sync_pipeline_job],
    resources={"sweden_cache": PostgresCacheResource(cache_name="sweden")},
    # Steps run one after another in the run worker: a process per step would re-import
    # dagster, dbt and airbyte each time (most of a run's orchestration overhead).
    executor=in_process_executor,
)
