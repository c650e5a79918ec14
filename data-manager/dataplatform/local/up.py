"""`make up`: start the platform, run the sample pipelines through it, report what happened.

    dataplatform up        # what platform/up.sh and `make up` run

1. starts the sample products API (python -m dataplatform.local.sample_api) on
   $SAMPLE_API_PORT (8765);
2. starts the platform (local_platform.start; safe when it already runs);
3. launches the sample jobs over the webserver's GraphQL API, the same launchRun call the UI's
   "Launch run" makes, and polls runOrError until they finish. The two syncs run together, then
   dbt_poc rebuilds every model on their output;
4. prints the UI address, each run's status and duration, and each reporting table's row count.

$UP_JOBS picks other jobs (see run_waves_from_env), $SAMPLE_RUN_TIMEOUT (900 s) bounds each wave;
both are read through dataplatform.settings. Exit status 1 if a location did not load,
a run did not succeed or a reporting table is empty.
"""

from __future__ import annotations

import os
import sys
import time

import psycopg2
import requests

from dataplatform import settings as platform_settings
from dataplatform.local.platform import (
    PlatformError,
    live_pid,
    pg_env,
    pid_file,
    start,
)
from dataplatform.runtime import paths, processes
from dataplatform.runtime.dagster_graphql import DagsterGraphQL, DagsterGraphQLError, RunResult
from pyairbyte.utils import pg

# Runs in one wave are launched together; the next wave starts when they all finished.
SAMPLE_RUN_WAVES: list[list[tuple[str, str]]] = [
    [
        ("airbyte_sync", "airbyte_sync_pipeline"),
        ("sample_product_sync", "sample_product_sync_pipeline"),
    ],
    [("dbt_poc", "dbt_poc_pipeline")],
]
REPORTING_SCHEMA = "reporting"


def run_waves_from_env() -> list[list[tuple[str, str]]]:
    """$UP_JOBS overrides the waves: "loc/job,loc/job;loc/job" (';' separates waves)."""
    spec = platform_settings.up().jobs.strip()
    if not spec:
        return SAMPLE_RUN_WAVES
    waves = []
    for wave in spec.split(";"):
        pairs = []
        for item in filter(None, (x.strip() for x in wave.split(","))):
            location, _, job = item.partition("/")
            if not location or not job:
                raise PlatformError(f"UP_JOBS: {item!r} is not location/job")
            pairs.append((location, job))
        if pairs:
            waves.append(pairs)
    return waves


def _say(message: str) -> None:
    print(message, flush=True)


def _sample_api_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/products", params={"limit": 1}, timeout=2).ok
    except requests.RequestException:
        return False


def ensure_sample_api() -> str:
    """The sample API's URL; started (pid file sample-api.pid) unless it already answers."""
    port = platform_settings.up().sample_api_port
    url = f"http://127.0.0.1:{port}"
    os.environ["SAMPLE_API_URL"] = url  # code servers and run workers inherit it
    if live_pid("sample-api") or _sample_api_answers(url):
        return url
    if not processes.port_is_free("127.0.0.1", port):
        holder = processes.port_holder(port)
        raise PlatformError(
            f"port {port} for the sample API is taken{' by ' + holder if holder else ''} and "
            "does not answer /products; free it or set SAMPLE_API_PORT"
        )
    log = paths.log_dir() / "sample-api.log"
    proc = processes.spawn(
        [sys.executable, "-m", "dataplatform.local.sample_api", "--port", str(port)], log
    )
    processes.write_pid_file(pid_file("sample-api"), proc.pid)
    deadline = time.monotonic() + 30
    while not _sample_api_answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise PlatformError(f"the sample API did not start on {url}; see {log}")
        time.sleep(0.2)
    _say(f"[platform] sample-api: started (pid {proc.pid}) on {url}")
    return url


def run_waves(
    client: DagsterGraphQL, loaded: set[str], waves: list[list[tuple[str, str]]]
) -> list[RunResult]:
    run_timeout = platform_settings.up().run_timeout
    results: list[RunResult] = []
    for wave in waves:
        launched = []
        for location, job in wave:
            if location not in loaded:
                _say(f"  not launching {location}/{job}: location {location} is not loaded")
                results.append(RunResult("", job, location, "NOT_LAUNCHED", time.time()))
                continue
            try:
                launched.append(client.launch_run(location, job))
            except DagsterGraphQLError as exc:
                _say(f"  launch failed: {exc}")
                results.append(
                    RunResult("", job, location, "NOT_LAUNCHED", launched_at=time.time())
                )
        for run in launched:
            _say(f"  launched {run.location}/{run.job_name} (run {run.run_id[:8]})")
        results += client.wait_for_runs(launched, timeout=run_timeout)
    return results


def reporting_row_counts(pg_env: dict[str, str]) -> dict[str, int]:
    conn = pg.connect(pg.params_from_env(pg_env))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "select table_name from information_schema.tables "
                "where table_schema = %s order by table_name",
                (REPORTING_SCHEMA,),
            )
            tables = [row[0] for row in cur.fetchall()]
            counts = {}
            for table in tables:
                cur.execute(f'select count(*) from "{REPORTING_SCHEMA}"."{table}"')
                counts[f"{REPORTING_SCHEMA}.{table}"] = cur.fetchone()[0]
        return counts
    finally:
        conn.close()


def run() -> int:
    """The whole `make up`; 0 if every location loaded, every run succeeded, no table is empty."""
    t0 = time.monotonic()
    try:
        paths.log_dir().mkdir(parents=True, exist_ok=True)
        waves = run_waves_from_env()
        ensure_sample_api()
        state = start()
    except PlatformError as exc:
        print(f"[platform] error: {exc}", file=sys.stderr)
        return 2
    ok = set(state["loaded"]) >= set(state["locations"])
    client = DagsterGraphQL(state["webserver"]["url"])
    _say("\nRunning the sample pipelines through the platform:")
    results = run_waves(client, set(state["loaded"]), waves)
    _say("\nRuns:")
    for r in results:
        duration = f"{r.duration:6.1f}s" if r.duration is not None else "      -"
        _say(f"  {r.location + '/' + r.job_name:50} {r.status:12} {duration}  run {r.run_id[:8]}")
        if r.status != "SUCCESS":
            ok = False
            _say(f"    see {state['webserver']['url']}/runs/{r.run_id}")
    try:
        counts = reporting_row_counts(pg_env())
    except psycopg2.Error as exc:
        counts = {}
        _say(f"  cannot count reporting rows: {exc}")
    _say("\nReporting tables:")
    for table, count in counts.items():
        _say(f"  {table:45} {count:8d} rows")
        ok = ok and count > 0
    if not counts:
        _say("  (none found)")
        ok = False
    _say(
        f"\nDagster UI: {state['webserver']['url']}   logs: {paths.log_dir()}   "
        f"({time.monotonic() - t0:.0f}s)"
    )
    _say("All sample pipelines succeeded." if ok else "Something failed (see above).")
    return 0 if ok else 1
