"""The container deployment measured, beside local mode in the same run.

    .venv/bin/python bench/containers.py [--runs 2] [--skip-cold]

Needs what `make test-containers` needs (root, Debian's docker.io and mmdebstrap); it uses the
same engine and images (tests/containers/engine.py), so the official base images are replaced by
their Debian-package stand-ins. In one run:

1. The platform image's size.
2. Build time: cold (`--no-cache`, the base image present) and with the layer cache after a
   change to the project's sources (a new file under dagster_code/, so the dependency layers are
   reused and the project layers rebuilt).
3. Start-up: `docker compose up -d --wait` (every service healthy), and up to every location
   LOADED over the published webserver port.
4. sample_product_sync_pipeline, launch to SUCCESS (best of --runs): in containers with the
   default launcher (run workers forked in data-manager), in containers with the Docker run
   launcher (a new container per run), and in local mode. The ratios are to local mode, and
   Docker launcher / default launcher is the per-run overhead of a container per run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # tests.containers holds the engine and stack helpers

from _setup import bench_database  # noqa: E402

from dataplatform.runtime.dagster_graphql import DagsterGraphQL  # noqa: E402
from tests.containers import engine as engines  # noqa: E402
from tests.containers.conftest import make_stack  # noqa: E402

LOCATIONS = ["dbt_poc", "airbyte_sync", "sample_product_sync"]
JOB = ("sample_product_sync", "sample_product_sync_pipeline")


def launch_to_success(client: DagsterGraphQL, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        run = client.launch_run(*JOB)
        start = time.monotonic()
        [result] = client.wait_for_runs([run], timeout=600)
        if result.status != "SUCCESS":
            raise SystemExit(f"{JOB[1]} ended {result.status} (run {run.run_id})")
        best = min(best, time.monotonic() - start)
    return best


def containers(eng, work: Path, runs: int, docker_launcher: bool) -> dict:
    files = ["docker-compose.yaml"]
    extra = {}
    if docker_launcher:
        files.append("docker-compose.docker-launcher.yaml")
        socket = eng.host.removeprefix("unix://")
        extra = {"DOCKER_SOCKET": socket, "DOCKER_GID": str(os.stat(socket).st_gid)}
    project = "dataplatform-bench-docker" if docker_launcher else "dataplatform-bench"
    stack = make_stack(eng, work, project, compose_files=files, **extra)
    stack.down("-v")
    out = {}
    try:
        start = time.monotonic()
        stack.up()
        out["up_wait_s"] = time.monotonic() - start
        client = stack.graphql()
        loaded = client.wait_for_locations(LOCATIONS, timeout=300)
        out["loaded_s"] = time.monotonic() - start
        if not all(loaded.get(n) and loaded[n].loaded for n in LOCATIONS):
            raise SystemExit(f"not every location loaded: {loaded}")
        out["run_s"] = launch_to_success(client, runs)
    finally:
        stack.down("-v")
        for container in eng.docker("ps", "-aq", "--filter", "label=dagster/run_id").split():
            eng.docker("rm", "-f", container, check=False)
    return out


def local(runs: int) -> float:
    from dataplatform.local import platform as local_platform
    from dataplatform.local import up

    bench_database("dataplatform_bench_containers")
    try:
        up.ensure_sample_api()
        state = local_platform.start(timeout=600)
        return launch_to_success(DagsterGraphQL(state["webserver"]["url"]), runs)
    finally:
        local_platform.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--skip-cold", action="store_true", help="no --no-cache build")
    args = parser.parse_args()
    work = REPO_ROOT / ".project" / "bench" / "containers"
    work.mkdir(parents=True, exist_ok=True)
    eng = engines.engine()
    try:
        engines.base_images(eng)
        cold = None if args.skip_cold else engines.build_platform_image(eng, no_cache=True)
        marker = REPO_ROOT / "dagster_code" / ".bench-source-change"
        marker.write_text(str(time.time()))
        try:
            cached = engines.build_platform_image(eng)
        finally:
            marker.unlink()
        engines.build_platform_image(eng)  # back to the image of the sources as they are
        size = engines.image_size(eng)
        default = containers(eng, work, args.runs, docker_launcher=False)
        docker = containers(eng, work, args.runs, docker_launcher=True)
    finally:
        eng.stop()
    local_s = local(args.runs)

    print(f"image size                          {size / 1e6:8.0f} MB")
    if cold is not None:
        print(f"build, cold (--no-cache)            {cold:8.1f} s")
        print(f"build, layer cache + source change  {cached:8.1f} s   ({cached / cold:.2f}x cold)")
    else:
        print(f"build, layer cache + source change  {cached:8.1f} s")
    print(f"compose up -d --wait                {default['up_wait_s']:8.1f} s")
    print(f"compose up to all LOADED            {default['loaded_s']:8.1f} s")
    print(f"{JOB[1]}, launch to SUCCESS (best of {args.runs}):")
    print(f"  local mode                        {local_s:8.1f} s   1.00x")
    for label, figures in (("containers, default launcher", default),
                           ("containers, Docker launcher", docker)):  # fmt: skip
        print(f"  {label:32}  {figures['run_s']:8.1f} s   {figures['run_s'] / local_s:.2f}x")
    overhead = docker["run_s"] - default["run_s"]
    print(f"  Docker launcher overhead per run  {overhead:+8.1f} s   "
          f"({docker['run_s'] / default['run_s']:.2f}x the default launcher)")  # fmt: skip


if __name__ == "__main__":
    main()
