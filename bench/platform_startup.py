"""Platform start-up, memory and run overhead, measured in one run.

    .venv/bin/python bench/platform_startup.py

Starts a private platform (own platform dir, free ports, a fresh database) and prints:
1. each code server started alone (best of 2): time until it answers, RSS. Baseline: a trivial code
   location (tests/fixture_locations/alpha) started the same way.
2. the whole platform: time from start to all locations loaded over GraphQL, with every code
   server, the webserver and the daemon starting together (as `make up` does).
3. sample_product_sync_pipeline: launch (GraphQL) to SUCCESS, minus its steps' own time, i.e.
   the orchestration overhead. Baseline: the trivial fixture job through the same platform.
4. RSS of each code server, the webserver, the daemon and dagster-init, after those runs.
Targets: code server ready <= 4 s and <= 150 MB; overhead <= 5 s per run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

import psutil

# `python bench/<script>.py` puts bench/ on sys.path, so its helpers import directly.
from _setup import bench_database

from dataplatform.runtime import paths, processes
from dataplatform.runtime.dagster_init.health import HealthChecker
from dataplatform.runtime.processes import ephemeral_port, reserve_free_ports
from pyairbyte import settings

FIXTURE = {
    "name": "bench_baseline",
    "enabled": True,
    "module": "tests.fixture_locations.alpha",
    "description": "trivial location: the baseline",
}
TARGET_READY_S, TARGET_RSS_MB, TARGET_OVERHEAD_S = 4.0, 150.0, 5.0


def start_alone(module: str, port: int, env: dict, checker: HealthChecker) -> tuple[float, float]:
    """Seconds until a lone `dagster api grpc` answers, and its RSS (MB) once loaded."""
    t0 = time.monotonic()
    proc = processes.spawn(
        [sys.executable, "-m", "dagster", "api", "grpc", "--module-name", module,
         "--host", "127.0.0.1", "--port", str(port), "--lazy-load-user-code"],
        paths.log_dir() / f"bench-alone-{port}.log",
        env=env,
        cwd=settings.app_root(),
    )  # fmt: skip
    try:
        while not checker.is_serving("127.0.0.1", port, 1.0):
            if proc.poll() is not None or time.monotonic() - t0 > 180:
                raise RuntimeError(f"{module} did not start; see {paths.log_dir()}")
            time.sleep(0.05)
        ready = time.monotonic() - t0
        error = checker.load_error("127.0.0.1", port)
        if error:
            raise RuntimeError(f"{module} failed to load: {error}")
        return ready, processes.rss_mb(proc.pid)
    finally:
        processes.terminate(proc.pid, popen=proc)
        checker.forget("127.0.0.1", port)


def best_of(n: int, *args) -> tuple[float, float]:
    """The fastest of n starts (a busy machine only ever adds time), with its RSS."""
    return min(start_alone(*args) for _ in range(n))


def overhead(client, location: str, job: str) -> tuple[float, float, float]:
    """(launch -> SUCCESS, steps' own time, overhead) for one run, in seconds."""
    run = client.launch_run(location, job)
    client.wait_for_runs([run], timeout=900)
    if run.status != "SUCCESS":
        raise RuntimeError(f"{location}/{job} ended {run.status}")
    steps = sum(s["endTime"] - s["startTime"] for s in run.steps if s.get("endTime"))
    return run.duration, steps, run.duration - steps


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main() -> int:
    bench_root = settings.project_dir() / "bench-platform"
    shutil.rmtree(bench_root, ignore_errors=True)
    os.environ["DATAPLATFORM_PLATFORM_DIR"] = str(bench_root)
    pg = bench_database("dataplatform_bench_platform")
    doc = json.loads(settings.code_locations_file().read_text())
    real = [loc for loc in doc["code_locations"] if loc["enabled"]]
    ports = reserve_free_ports(len(real) + 1, 4276, 4299, owner="bench")
    for loc, port in zip(real, ports, strict=False):
        loc["port"] = port
    baseline_loc = {**FIXTURE, "port": ports[-1]}
    doc["code_locations"] = [*real, baseline_loc]
    bench_root.mkdir(parents=True)
    config = bench_root / "code-locations.json"
    config.write_text(json.dumps(doc))
    os.environ["CODE_LOCATIONS_FILE"] = str(config)
    os.environ["DAGSTER_WEBSERVER_PORT"] = str(ephemeral_port())
    os.environ["SAMPLE_API_PORT"] = str(ephemeral_port())

    from dataplatform.local import platform as local_platform
    from dataplatform.local import up
    from dataplatform.runtime.dagster_graphql import DagsterGraphQL

    print(f"PostgreSQL {pg.host}:{pg.port}/{pg.dbname}; {psutil.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    paths.log_dir().mkdir(parents=True, exist_ok=True)
    local_platform.prepare_dagster_home()
    local_platform.prepare_dbt_manifest()
    env = local_platform.platform_env(
        local_platform._pg_env(pg.host, pg.port, pg.user, pg.password, pg.dbname)
    )
    local_platform.ensure_instance_storage(env)

    # 1. Each code server alone.
    checker = HealthChecker()
    print("\n1. Each code server started alone (ready = answers gRPC health; RSS once loaded)")
    base_ready, base_rss = best_of(2, FIXTURE["module"], ports[-1], env, checker)
    print(
        f"   {'baseline (trivial location)':30} ready {base_ready:5.1f} s   RSS {base_rss:5.0f} MB"
    )
    for loc in real:
        ready, rss = best_of(2, loc["module"], loc["port"], env, checker)
        print(
            f"   {loc['name']:30} ready {ready:5.1f} s ({ready / base_ready:4.2f}x)   "
            f"RSS {rss:5.0f} MB ({rss / base_rss:4.2f}x)   "
            f"[{verdict(ready <= TARGET_READY_S)} {TARGET_READY_S:.0f} s, "
            f"{verdict(rss <= TARGET_RSS_MB)} {TARGET_RSS_MB:.0f} MB]"
        )
    checker.close()

    # 2. The whole platform, everything starting together.
    try:
        up.ensure_sample_api()
        t0 = time.monotonic()
        state = local_platform.start()
        all_loaded = time.monotonic() - t0
        if set(state["loaded"]) != set(state["locations"]):
            raise RuntimeError(f"not every location loaded: {state['loaded']}")
        sup = local_platform.supervisor_status()["locations"]
        print(f"\n2. Platform start to all {len(state['locations'])} locations loaded "
              f"(over GraphQL): {all_loaded:.1f} s")  # fmt: skip
        for name, info in sup.items():
            print(f"   {name:30} code server ready after {info['ready_after_seconds']:5.1f} s")

        # 3. Orchestration overhead per run.
        client = DagsterGraphQL(state["webserver"]["url"])
        print("\n3. Launch (GraphQL) to SUCCESS, minus the steps' own time")
        b_total, b_steps, b_over = overhead(client, FIXTURE["name"], "alpha_job")
        print(f"   {'baseline alpha_job (trivial)':36} total {b_total:5.1f} s  steps "
              f"{b_steps:5.1f} s  overhead {b_over:5.1f} s")  # fmt: skip
        total, steps, over = overhead(client, "sample_product_sync", "sample_product_sync_pipeline")
        print(
            f"   {'sample_product_sync_pipeline':36} total {total:5.1f} s  steps {steps:5.1f} s  "
            f"overhead {over:5.1f} s ({over / b_over:4.2f}x baseline)   "
            f"[{verdict(over <= TARGET_OVERHEAD_S)} {TARGET_OVERHEAD_S:.0f} s]"
        )
        # 4. Memory, after the runs (the daemon loads the workspace lazily).
        print("\n4. RSS after the runs")
        for name, info in sup.items():
            print(f"   code server {name:28} {processes.rss_mb(info['pid']):6.0f} MB")
        for component in ("dagster-webserver", "dagster-daemon", "dagster-init"):
            pid = local_platform.live_pid(component)
            print(f"   {component:40} {processes.rss_mb(pid):6.0f} MB")

    finally:
        local_platform.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
