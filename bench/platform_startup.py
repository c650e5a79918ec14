"""Platform start-up and memory, forked code servers vs plain processes, measured in one run.

    .venv/bin/python bench/platform_startup.py [--locations 30] [--plain-locations 10]
                                              [--idle 60] [--with-runs]

Every figure of the forked runtime (DAGSTER_INIT_MODE=fork, the default) is printed beside the
same figure for plain `dagster api grpc` processes (DAGSTER_INIT_MODE=process), measured in the
same run on the same machine, with the ratio fork / plain.

1. A code server started alone (best of 2): seconds until it answers gRPC health, then RSS, PSS
   and USS from /proc/PID/smaps_rollup. Fork: a fork of a ready fork server (its own start-up
   is printed apart: it happens once per platform). Target: ready <= 1.5 s, USS <= 80 MB.
2. Scale: N generated locations (copies of sample_product_sync's declaration under the prefix
   `bench_sps_`, in a temporary package on PYTHONPATH, each on its own port) on a whole local
   platform (dagster-init, webserver, daemon): start to all LOADED over GraphQL (<= 60 s),
   total PSS of every platform process (<= 3 GB), and CPU of the idle platform over --idle
   seconds (<= 10 % of one core). Plain mode runs --plain-locations (default 10: 30 plain
   servers take minutes and ~7 GB here); its figures are also given per location.
3. Reload (fork mode): edit one generated location's job description (its assets' keys are
   sample_product_sync's, shared by every copy), GraphQL
   reloadRepositoryLocation, seconds until the webserver shows the new text (<= 5 s).
4. With --with-runs: launch to SUCCESS of a trivial job (<= 3 s) and of the first generated
   location's pipeline, sample_product_sync_pipeline's copy (<= 8 s), in both modes, with the
   pipeline's step times. The run is queued, so the daemon's dequeue (about 1 s) is included.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

# `python bench/<script>.py` puts bench/ on sys.path, so its helpers import directly.
from _setup import bench_database

from dataplatform.runtime import paths, processes
from dataplatform.runtime.dagster_init.health import HealthChecker
from dataplatform.runtime.dagster_init.launchers import ForkLauncher
from dataplatform.runtime.processes import ephemeral_port, reserve_free_ports
from pyairbyte import settings

SAMPLE = "dagster_code.sample_product_sync"
BASELINE = "tests.fixture_locations.alpha"
PREFIX = "bench_sps_"
TARGET = {"ready": 1.5, "uss": 80.0, "loaded": 60.0, "pss_gb": 3.0, "idle_cpu": 10.0,
          "reload": 5.0, "trivial": 3.0, "pipeline": 8.0}  # fmt: skip
TRIVIAL = "bench_trivial"  # a location with one trivial job (tests.fixture_locations.alpha)


def verdict(ok: bool, target: str) -> str:
    return f"[meets {target}]" if ok else f"[MISSES {target}]"


def ratio(fork: float, plain: float) -> str:
    return f"{fork / plain:5.2f}x" if plain else "  n/a"


def memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (MB) from /proc/PID/smaps_rollup: PSS splits shared pages fairly."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-1] == "kB":
            fields[parts[0].rstrip(":")] = int(parts[1])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    kb = 1024 / 1e6
    return {"rss": fields.get("Rss", 0) * kb, "pss": fields.get("Pss", 0) * kb, "uss": uss * kb}


# ---- 1. one code server alone ---------------------------------------------------------------


def grpc_args(module: str, port: int, name: str) -> list[str]:
    return ["--module-name", module, "--host", "127.0.0.1", "--port", str(port),
            "--location-name", name, "--lazy-load-user-code"]  # fmt: skip


def wait_serving(proc, port: int, checker: HealthChecker, t0: float, what: str) -> float:
    while not checker.is_serving("127.0.0.1", port, 1.0):
        if proc.poll() is not None or time.monotonic() - t0 > 180:
            raise RuntimeError(f"{what} did not start; see {paths.log_dir()}")
        time.sleep(0.02)
    return time.monotonic() - t0


def start_alone(launcher, module: str, port: int, checker: HealthChecker) -> tuple[float, dict]:
    """Seconds until one code server answers, and its memory once its code loaded."""
    name = module.rsplit(".", 1)[-1]
    checker.forget("127.0.0.1", port)
    t0 = time.monotonic()
    proc = launcher.start(
        name, grpc_args(module, port, name), paths.log_dir() / f"alone-{name}.log"
    )
    try:
        ready = wait_serving(proc, port, checker, t0, module)
        error = checker.load_error("127.0.0.1", port)
        if error:
            raise RuntimeError(f"{module} failed to load: {error}")
        return ready, memory_mb(proc.pid)
    finally:
        processes.terminate(proc.pid, timeout=10, popen=proc if hasattr(proc, "wait") else None)
        checker.forget("127.0.0.1", port)


def best_of(n: int, *args) -> tuple[float, dict]:
    """The fastest of n starts (a busy machine only ever adds time), with its memory."""
    return min((start_alone(*args) for _ in range(n)), key=lambda r: r[0])


def section_alone(port: int) -> dict:
    from dataplatform.runtime.dagster_init.launchers import ProcessLauncher

    print("\n1. One code server started alone (best of 2; ready = answers gRPC health)")
    checker = HealthChecker()
    from dataplatform import settings as platform_settings

    preload = platform_settings.supervisor().preload_modules()  # what the platform pre-loads
    fork = ForkLauncher(child_logs=True, preload=preload, backoff_max=5)
    t0 = time.monotonic()
    while fork.ready_info is None:
        fork.tick(time.monotonic())
        if time.monotonic() - t0 > 240:
            raise RuntimeError("the fork server did not get ready; see fork-server.log")
        time.sleep(0.05)
    parent_mem = memory_mb(fork.parent_pid)
    print(f"   fork server (once per platform): ready in {fork.ready_info['seconds']:.1f} s "
          f"(pre-loads {', '.join(preload)}), RSS {parent_mem['rss']:.0f} MB, "
          f"{fork.ready_info['threads']} thread")  # fmt: skip
    plain = ProcessLauncher(child_logs=True)
    results = {}
    try:
        for module in (BASELINE, SAMPLE):
            f_ready, f_mem = best_of(2, fork, module, port, checker)
            p_ready, p_mem = best_of(2, plain, module, port, checker)
            results[module] = (f_ready, f_mem, p_ready, p_mem)
            print(f"   {module}")
            print(f"     ready  fork {f_ready:5.2f} s   plain {p_ready:5.2f} s   "
                  f"{ratio(f_ready, p_ready)}   "
                  f"{verdict(f_ready <= TARGET['ready'], '<= 1.5 s')}")  # fmt: skip
            for key in ("rss", "pss", "uss"):
                target = f"   {verdict(f_mem['uss'] <= TARGET['uss'], '<= 80 MB')}"
                f_mb, p_mb = f_mem[key], p_mem[key]
                print(f"     {key.upper()}    fork {f_mb:5.0f} MB  plain {p_mb:5.0f} MB  "
                      f"{ratio(f_mb, p_mb)}{target if key == 'uss' else ''}")  # fmt: skip
    finally:
        fork.close()
        checker.close()
    return results


# ---- 2. scale: N generated locations on a whole platform ------------------------------------


def generate_locations(package_dir: Path, count: int, ports: list[int]) -> list[dict]:
    """`count` copies of sample_product_sync's declaration, as modules bench_sps_NN."""
    entries = []
    for i, port in zip(range(1, count + 1), ports, strict=False):
        name = f"{PREFIX}{i:02d}"
        (package_dir / f"{name}.py").write_text(location_source(name, "generated copy"))
        entries.append({"name": name, "enabled": True, "module": name, "port": port,
                        "description": "bench copy of sample_product_sync",
                        "metadata": {"connector": "sample-connector",
                                     "dbt_source": "sample_connector"}})  # fmt: skip
    return entries


def location_source(name: str, job_description: str) -> str:
    return textwrap.dedent(f'''
        """{name}: sample_product_sync's declaration under a bench prefix."""

        from dagster_code.lib.connector_location import ConnectorLocation

        location = ConnectorLocation(
            name="{name}",
            connector="sample-connector",
            streams=["products"],
            dbt_source="sample_connector",
            sync_asset_name="{name}_sync",
            transform_asset_name="{name}_transform",
            job_name="{name}_pipeline",
            sync_description="Sync the sample products.",
            transform_description="Build the sample products with dbt.",
            job_description="{job_description}",
        )
        defs = location.defs
    ''')


def platform_pids() -> set[int]:
    """Every process of the platform: each recorded pid and all its descendants."""
    found = set()
    for pid_file in paths.run_dir().glob("*.pid"):
        pid = processes.read_live_pid(pid_file)
        if not pid:
            continue
        try:
            proc = psutil.Process(pid)
            found |= {pid, *(c.pid for c in proc.children(recursive=True))}
        except psutil.Error:
            pass
    return found


def pss_by_role_gb(pids: set[int]) -> dict[str, float]:
    """PSS of the platform's processes, in GB, summed per role (see `role`)."""
    by_role: dict[str, float] = {}
    for pid in pids:
        try:
            pss = memory_mb(pid)["pss"] / 1000
        except OSError:
            continue
        by_role[role(pid)] = by_role.get(role(pid), 0.0) + pss
    return dict(sorted(by_role.items(), key=lambda kv: -kv[1]))


def cpu_seconds(pids: set[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            out[pid] = times.user + times.system
        except psutil.Error:
            pass
    return out


def role(pid: int) -> str:
    """What a platform process is: its pid file's name, or its place under dagster-init."""
    for pid_file in paths.run_dir().glob("*.pid"):
        if processes.read_live_pid(pid_file) == pid:
            return "code servers" if pid_file.stem.startswith("code-server-") else pid_file.stem
    try:
        proc = psutil.Process(pid)
        parent = proc.parent()
        grandparent = parent.parent() if parent else None
    except psutil.Error:
        return "gone"
    if "dataplatform.runtime.forkserver" in " ".join(proc.cmdline()):
        if grandparent and parent and "forkserver" in " ".join(parent.cmdline()):
            return "run forkservers"
        return "code servers"
    return f"other ({proc.name()})"


def idle_cpu_percent(seconds: float) -> tuple[float, dict[str, float]]:
    """CPU of the whole idle platform, as % of one core, over `seconds`; and per role."""
    before = cpu_seconds(platform_pids())
    time.sleep(seconds)
    after = cpu_seconds(platform_pids())
    by_role: dict[str, float] = {}
    for pid in after:
        used = 100 * (after[pid] - before.get(pid, 0.0)) / seconds
        by_role[role(pid)] = by_role.get(role(pid), 0.0) + used
    return sum(by_role.values()), dict(sorted(by_role.items(), key=lambda kv: -kv[1]))


def reload_seconds(client, package_dir: Path, name: str) -> float:
    (package_dir / f"{name}.py").write_text(location_source(name, "edited for the reload"))
    query = ("query($loc: String!) { repositoryOrError(repositorySelector: "
             "{repositoryLocationName: $loc, repositoryName: \"__repository__\"}) "
             "{ ... on Repository { jobs { name description } } } }")  # fmt: skip
    t0 = time.monotonic()
    reloaded = client.reload_location(name)
    seen = None
    while time.monotonic() - t0 < 60:
        jobs = client.query(query, {"loc": name})["repositoryOrError"].get("jobs", [])
        seen = [j["description"] for j in jobs if j["name"] == f"{name}_pipeline"]
        if "edited for the reload" in seen:
            return time.monotonic() - t0
        time.sleep(0.1)
    print(f"   reload of {name}: GraphQL said {'SUCCESS' if reloaded else 'not loaded'}, "
          f"description still {seen}")  # fmt: skip
    return float("inf")


def run_seconds(client, name: str) -> dict:
    """Launch to SUCCESS of the trivial job (best of 3) and of the sample pipeline (best of 2)."""

    def once(location: str, job: str) -> tuple[float, list]:
        run = client.launch_run(location, job)
        client.wait_for_runs([run], timeout=900, poll=0.1)
        if run.status != "SUCCESS":
            print(f"   {location}/{job}: {run.status}")
            return float("nan"), []
        return run.duration, run.steps

    trivial = min(once(TRIVIAL, "alpha_job")[0] for _ in range(3))
    pipeline = [once(name, f"{name}_pipeline") for _ in range(2)]
    seconds, steps = min(pipeline, key=lambda r: r[0])
    step_times = {s["stepKey"]: round(s["endTime"] - s["startTime"], 1)
                  for s in steps if s.get("endTime") and s.get("startTime")}  # fmt: skip
    return {"trivial_s": trivial, "run_s": seconds, "steps": step_times}


def run_platform(mode: str, entries: list[dict], bench_root: Path, idle: float, runs: bool):
    from dataplatform.local import platform as local_platform
    from dataplatform.runtime.dagster_graphql import DagsterGraphQL

    run_root = bench_root / mode
    shutil.rmtree(run_root, ignore_errors=True)
    run_root.mkdir(parents=True)
    config = run_root / "code-locations.json"
    config.write_text(json.dumps({"code_locations": entries}))
    os.environ.update(DATAPLATFORM_PLATFORM_DIR=str(run_root / "platform"),
                      CODE_LOCATIONS_FILE=str(config), DAGSTER_INIT_MODE=mode,
                      DAGSTER_WEBSERVER_PORT=str(ephemeral_port()))  # fmt: skip
    out = {"count": len(entries)}
    try:
        if runs:  # before the start: code servers and their runs take SAMPLE_API_URL from env
            from dataplatform.local import up

            up.ensure_sample_api()
        t0 = time.monotonic()
        state = local_platform.start(timeout=600)
        out["loaded_s"] = time.monotonic() - t0
        out["loaded"] = len(state["loaded"])
        if out["loaded"] != len(entries):
            print(f"   ({mode}: only {out['loaded']} of {len(entries)} loaded)")
        client = DagsterGraphQL(state["webserver"]["url"])
        time.sleep(5)  # let the daemon's first workspace load pass before the idle window
        out["pss_by_role"] = pss_by_role_gb(platform_pids())
        out["pss_gb"] = sum(out["pss_by_role"].values())
        out["processes"] = len(platform_pids())
        out["idle_cpu"], out["idle_by_role"] = idle_cpu_percent(idle)
        if mode == "fork":
            out["reload_s"] = reload_seconds(client, Path(os.environ["BENCH_PACKAGE_DIR"]),
                                             entries[0]["name"])  # fmt: skip
        if runs:
            out.update(run_seconds(client, entries[0]["name"]))
    finally:
        local_platform.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--locations", type=int, default=30)
    parser.add_argument("--plain-locations", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--with-runs", action="store_true")
    args = parser.parse_args()

    bench_root = settings.project_dir() / "bench-platform"
    shutil.rmtree(bench_root, ignore_errors=True)
    bench_root.mkdir(parents=True)
    os.environ["DATAPLATFORM_PLATFORM_DIR"] = str(bench_root / "alone")
    pg = bench_database("dataplatform_bench_platform")
    package_dir = Path(tempfile.mkdtemp(prefix="bench-locations-"))
    os.environ["BENCH_PACKAGE_DIR"] = str(package_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(package_dir), os.environ.get("PYTHONPATH", "")])
    os.environ["SAMPLE_API_PORT"] = str(ephemeral_port())
    try:
        ports = reserve_free_ports(args.locations + 1, 4266, 4299, owner="bench")
    except RuntimeError as exc:
        raise SystemExit(f"cannot run {args.locations} locations: {exc}") from None

    from dataplatform.local import platform as local_platform

    print(f"PostgreSQL {pg.host}:{pg.port}/{pg.dbname}; {psutil.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    paths.log_dir().mkdir(parents=True, exist_ok=True)
    local_platform.prepare_dagster_home()
    local_platform.prepare_dbt_manifest()
    env = local_platform.platform_env(
        local_platform._pg_env(pg.host, pg.port, pg.user, pg.password, pg.dbname)
    )
    local_platform.ensure_instance_storage(env)
    os.environ.update(env)

    section_alone(ports[0])

    entries = generate_locations(package_dir, args.locations, ports)
    print(f"\n2. Scale: {args.locations} generated locations, fork mode; plain mode at "
          f"{args.plain_locations} (load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    trivial = [{"name": TRIVIAL, "module": BASELINE, "port": ports[-1]}] if args.with_runs else []
    fork = run_platform("fork", entries + trivial, bench_root, args.idle, args.with_runs)
    plain = run_platform("process", entries[: args.plain_locations] + trivial, bench_root,
                         args.idle, args.with_runs)  # fmt: skip
    fn, pn = fork["count"], plain["count"]
    print(f"   locations loaded       fork {fork['loaded']}/{fn}   plain {plain['loaded']}/{pn}")
    print(f"   start to all LOADED    fork {fork['loaded_s']:6.1f} s   "
          f"plain {plain['loaded_s']:6.1f} s"
          f"   {ratio(fork['loaded_s'], plain['loaded_s'])} (per location "
          f"{ratio(fork['loaded_s'] / fn, plain['loaded_s'] / pn)})   "
          f"{verdict(fork['loaded_s'] <= TARGET['loaded'], '<= 60 s')}")  # fmt: skip
    print(f"   total PSS              fork {fork['pss_gb']:6.2f} GB  "
          f"plain {plain['pss_gb']:6.2f} GB"
          f"   {ratio(fork['pss_gb'], plain['pss_gb'])} (per location "
          f"{ratio(fork['pss_gb'] / fn, plain['pss_gb'] / pn)}; {fork['processes']} and "
          f"{plain['processes']} processes)   "
          f"{verdict(fork['pss_gb'] <= TARGET['pss_gb'], '<= 3 GB')}")  # fmt: skip
    print(f"   idle CPU ({args.idle:.0f} s)         fork {fork['idle_cpu']:6.1f} %   plain "
          f"{plain['idle_cpu']:6.1f} %    {ratio(fork['idle_cpu'], plain['idle_cpu'])} (per "
          f"location {ratio(fork['idle_cpu'] / fn, plain['idle_cpu'] / pn)})   "
          f"{verdict(fork['idle_cpu'] <= TARGET['idle_cpu'], '<= 10 % of a core')}")  # fmt: skip
    for mode, figures in (("fork", fork), ("plain", plain)):
        parts = ", ".join(f"{name} {pct:.1f} %" for name, pct in figures["idle_by_role"].items())
        print(f"     idle CPU by process, {mode}: {parts}")
        parts = ", ".join(f"{name} {gb:.2f} GB" for name, gb in figures["pss_by_role"].items())
        print(f"     PSS by process, {mode}: {parts}")
    print(f"\n3. Reload (fork mode; plain `dagster api grpc` does not reload): edited description "
          f"shown after {fork['reload_s']:.1f} s   "
          f"{verdict(fork['reload_s'] <= TARGET['reload'], '<= 5 s')}")  # fmt: skip
    if args.with_runs:
        print(f"\n4. Runs, launch to SUCCESS (fork: warm runs, DAGSTER_INIT_WARM_RUNS=true)\n"
              f"   trivial job            fork {fork['trivial_s']:6.1f} s   plain "
              f"{plain['trivial_s']:6.1f} s   {ratio(fork['trivial_s'], plain['trivial_s'])}   "
              f"{verdict(fork['trivial_s'] <= TARGET['trivial'], '<= 3 s')}\n"
              f"   sample pipeline        fork {fork['run_s']:6.1f} s   plain "
              f"{plain['run_s']:6.1f} s   {ratio(fork['run_s'], plain['run_s'])}   "
              f"{verdict(fork['run_s'] <= TARGET['pipeline'], '<= 8 s')}\n"
              f"   its steps (s)          fork {fork['steps']}\n"
              f"                          plain {plain['steps']}")  # fmt: skip
    shutil.rmtree(package_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
