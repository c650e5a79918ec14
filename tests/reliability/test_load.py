"""Load on the real local platform: runs launched at once, and a long queue for one connector.

- 6 runs launched at once over GraphQL, 2 per job the platform serves (sample_product_sync,
  airbyte_sync, dbt_poc);
- LOAD_QUEUED_RUNS (default 20) runs of the cheapest connector job queued at once.

Every run must end SUCCESS, runs of the same connector (the `dataplatform/connector` tag,
limited to 1 in platform/dagster.yaml) must never overlap by Dagster's own start and end times,
and every cache and reporting table must end with the right row count and no duplicate primary
key. Each run's queue time (launch -> start) and duration (start -> end) is printed.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from dataplatform.runtime.dagster_graphql import RunResult
from tests.helpers import scalar
from tests.ports import free_code_location_ports

pytestmark = [pytest.mark.platform, pytest.mark.slow]

FAKER_COUNT = 200
PRODUCTS = 30
CONNECTOR_TAG = "dataplatform/connector"
JOBS = {  # location -> job
    "sample_product_sync": "sample_product_sync_pipeline",
    "airbyte_sync": "airbyte_sync_pipeline",
    "dbt_poc": "dbt_poc_pipeline",
}
# table -> (primary key, expected rows)
TABLES = {
    "pyairbyte_cache.products": ("id", PRODUCTS),
    "pyairbyte_cache.users": ("id", FAKER_COUNT),
    "staging.staging_products": ("product_id", PRODUCTS),
    "reporting.products_reporting": ("product_id", PRODUCTS),
    "reporting.faker_users_reporting": ("user_id", FAKER_COUNT),
}


@pytest.fixture(scope="module")
def load_platform(pg, tmp_path_factory):
    from tests.reliability.conftest import start_fault_platform

    ports = dict(zip(JOBS, free_code_location_ports(len(JOBS)), strict=True))
    env = {**os.environ, "FAKER_COUNT": str(FAKER_COUNT), "FAKER_SEED": "7"}
    with start_fault_platform(tmp_path_factory.mktemp("load"), ports=ports, env=env) as p:
        yield p


def _launch_all(p, jobs: list[tuple[str, str]]) -> list[RunResult]:
    """Launch every (location, job) at once, from parallel GraphQL calls."""
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda lj: p.client.launch_run(*lj), jobs))


def _tags(p, run_id: str) -> dict[str, str]:
    return {t["key"]: t["value"] for t in p.client.run(run_id)["tags"]}


def _report(label: str, runs: list[RunResult]) -> None:
    print(f"\n{label}: {len(runs)} runs")
    print(f"{'job':32} {'status':8} {'queued s':>9} {'run s':>7}")
    for r in sorted(runs, key=lambda r: r.start_time or 0):
        queued = (r.start_time or 0) - r.launched_at
        ran = (r.end_time or 0) - (r.start_time or 0)
        print(f"{r.job_name:32} {r.status:8} {queued:9.1f} {ran:7.1f}")


def _assert_serialized_per_connector(p, runs: list[RunResult]) -> None:
    by_connector: dict[str, list[RunResult]] = defaultdict(list)
    for r in runs:
        connector = _tags(p, r.run_id).get(CONNECTOR_TAG)
        if connector:
            by_connector[connector].append(r)
    for connector, connector_runs in by_connector.items():
        ordered = sorted(connector_runs, key=lambda r: r.start_time)
        for before, after in zip(ordered, ordered[1:], strict=False):
            assert after.start_time >= before.end_time, (
                f"{connector}: run {after.run_id} started before {before.run_id} ended"
            )


def _assert_tables(pg_conn, tables: dict[str, tuple[str, int]]) -> None:
    for table, (key, expected) in tables.items():
        count, distinct = (
            scalar(pg_conn, f"select count(*) from {table}"),
            scalar(pg_conn, f"select count(distinct {key}) from {table}"),
        )
        assert (count, distinct) == (expected, expected), f"{table}: {count} rows, {distinct} keys"


def test_six_runs_at_once_two_per_job(load_platform, pg_conn):
    p = load_platform
    t0 = time.monotonic()
    runs = _launch_all(p, [lj for lj in JOBS.items() for _ in range(2)])
    p.client.wait_for_runs(runs, timeout=900)
    _report(f"6 runs at once ({time.monotonic() - t0:.0f} s in all)", runs)

    assert [r.status for r in runs] == ["SUCCESS"] * 6, [(r.job_name, r.status) for r in runs]
    _assert_serialized_per_connector(p, runs)
    _assert_tables(pg_conn, TABLES)


def test_queued_runs_of_one_connector_all_succeed_one_at_a_time(load_platform, pg_conn):
    p = load_platform
    count = int(os.environ.get("LOAD_QUEUED_RUNS", "20"))
    location = "sample_product_sync"
    t0 = time.monotonic()
    runs = _launch_all(p, [(location, JOBS[location])] * count)
    p.client.wait_for_runs(runs, timeout=120 * count)
    _report(f"{count} queued runs of {location} ({time.monotonic() - t0:.0f} s in all)", runs)

    assert [r.status for r in runs] == ["SUCCESS"] * count
    _assert_serialized_per_connector(p, runs)
    _assert_tables(pg_conn, {t: v for t, v in TABLES.items() if "products" in t})
