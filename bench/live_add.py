"""A location added to (and removed from) the running platform, vs the old stop + start path.

    .venv/bin/python bench/live_add.py [--locations 3] [--rounds 3]

A local platform (fork mode, the default) serves --locations entries that all load
sample_product_sync's module under their own names and ports. Then, in the same run:

1. live add (best and median of --rounds): one more entry is written to code-locations.json and
   `dataplatform.lifecycle.live.apply_live` (what `connector add` calls) signals dagster-init; the
   figure is the time until the webserver shows the location LOADED and the daemon has loaded the
   new workspace (so a queued run of its job is dequeued). Target: <= 15 s. Then the entry is
   removed the same way (the live remove figure).
2. baseline: the path before live changes, `platform stop` then `platform start` with the extra
   entry, until `start` reports every location LOADED. Printed with the ratio live / baseline.

`connector add`'s own checks (discover, dbt parse, the import probe) come before the live part
and are the same on both paths, so they are left out of both figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time

import psutil

# `python bench/<script>.py` puts bench/ on sys.path, so its helpers import directly.
from _setup import bench_database

from dataplatform.runtime import paths
from dataplatform.runtime.processes import ephemeral_port, reserve_free_ports
from pyairbyte import settings

MODULE = "dagster_code.sample_product_sync"
TARGET_SECONDS = 15.0


def entry(name: str, port: int) -> dict:
    metadata = {"connector": "sample-connector", "dbt_source": "sample_connector"}
    return {"name": name, "enabled": True, "module": MODULE, "port": port,
            "description": "bench copy of sample_product_sync", "metadata": metadata}  # fmt: skip


def write(config, entries: list[dict]) -> None:
    config.write_text(json.dumps({"code_locations": entries}, indent=2) + "\n")


def server_pids() -> dict[str, int]:
    status = json.loads(paths.supervisor_status_file().read_text())
    return {name: info["pid"] for name, info in status["locations"].items()}


def live(present: list[str], absent: list[str]) -> float:
    from dataplatform.lifecycle.live import apply_live

    change = apply_live(present, absent)
    if change is None or not change.ok:
        print(change.describe() if change else "no dagster-init running")
        return float("inf")
    return change.seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--locations", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    root = settings.project_dir() / "bench-live-add"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    config = root / "code-locations.json"
    os.environ.update(DATAPLATFORM_PLATFORM_DIR=str(root / "platform"),
                      CODE_LOCATIONS_FILE=str(config),
                      DAGSTER_WEBSERVER_PORT=str(ephemeral_port()))  # fmt: skip
    pg = bench_database("dataplatform_bench_live_add")
    ports = reserve_free_ports(args.locations + 1, 4266, 4299, owner="bench")
    base = [entry(f"bench_live_{i:02d}", port) for i, port in enumerate(ports[:-1], 1)]
    extra = entry("bench_live_new", ports[-1])
    write(config, base)

    from dataplatform.local import platform as local_platform

    print(f"PostgreSQL {pg.host}:{pg.port}/{pg.dbname}; {psutil.cpu_count()} CPUs; load "
          f"average {os.getloadavg()[0]:.1f}; {args.locations} locations, fork mode")  # fmt: skip
    adds, removes = [], []
    try:
        local_platform.start(timeout=600)
        before = server_pids()
        for i in range(args.rounds):
            write(config, [*base, extra])
            adds.append(live([extra["name"]], []))
            untouched = all(server_pids().get(n) == pid for n, pid in before.items())
            write(config, base)
            removes.append(live([], [extra["name"]]))
            print(f"   round {i + 1}: live add {adds[-1]:5.2f} s, live remove "
                  f"{removes[-1]:5.2f} s, other servers kept their pids: {untouched}")  # fmt: skip
        # The old path: stop everything, start with the extra entry, until all LOADED.
        write(config, [*base, extra])
        t0 = time.monotonic()
        local_platform.stop()
        state = local_platform.start(timeout=600)
        baseline = time.monotonic() - t0
        if extra["name"] not in state["loaded"]:
            print(f"   (baseline: {extra['name']} did not load)")
    finally:
        local_platform.stop()

    best, median = min(adds), statistics.median(adds)
    verdict = "meets" if median <= TARGET_SECONDS else "MISSES"
    print(f"\nlive add to LOADED (webserver + daemon): best {best:.2f} s, median {median:.2f} s "
          f"[{verdict} <= {TARGET_SECONDS:.0f} s]")  # fmt: skip
    print(f"live remove: best {min(removes):.2f} s, median {statistics.median(removes):.2f} s")
    print(f"baseline, platform stop + start to all LOADED: {baseline:.2f} s")
    print(f"ratio live add / baseline: {median / baseline:.2f}x (median)")
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
