"""Benchmark: faker `users` into PostgreSQL: stock PostgresCache, CopyPostgresCache, bare COPY.

    .venv/bin/python bench/cache_load.py [--records 100000] [--seed 42]

Uses POSTGRES_* (pyairbyte.settings) and installs airbyte-source-faker==7.2.1 into the project's
connector directory on first use. Each variant runs in its own subprocess so that its peak RSS is
its own (`import airbyte` alone is ~310 MB):

- emit:  the connector's own `read` (its stdout drained and discarded) = source emit time; and
         its `spec` command (median of 3) = connector start time.
- read:  PyAirbyte reading the same records with no cache (`get_records`): PyAirbyte's own
         message handling, the floor under any cache's full sync.
- stock: `source.read(PostgresCache)`; cache step = time in `write_stream_data`.
- copy:  the same with CopyPostgresCache (which loads staged files while the source is still
         being read, so its cache step is what is left after the read); then a rerun with no
         new data (faker always_updated=false + the stored state), warm (same Source object)
         and cold (a new Source, which re-runs the connector's spec and discover first).
- copy_serial: CopyPostgresCache staging one file, so the whole load happens after the read.
- bare:  that run's staged records, parsed in Python (json.loads with exact decimals) and
         COPYed as text into a plain table of the same column types: the floor for a cache step.

Full sync = `source.read(cache)` with spec and discover already done (they are connector start-up,
the same for every cache). Figures depend on machine load (2 shared cores): compare the ratios.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

SCHEMAS = {
    "stock": "bench_cache_stock",
    "copy": "bench_cache_copy",
    "copy_serial": "bench_cache_copy_serial",
    "bare": "bench_cache_bare",
}
FAKER_PIP_URL = "airbyte-source-faker==7.2.1"


def _work_dir() -> Path:
    from pyairbyte import settings

    path = settings.project_dir() / "bench" / "cache_load"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def _cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _faker_config(args) -> dict:
    return {"count": args.records, "seed": args.seed, "always_updated": False, "parallelism": 2}


def _faker_source(args):
    from pyairbyte.utils.airbyte_env import configure_airbyte_environment, connector_install_root

    configure_airbyte_environment()
    import airbyte as ab

    source = ab.get_source(
        "source-faker",
        config=_faker_config(args),
        pip_url=FAKER_PIP_URL,
        install_root=connector_install_root(),
    )
    source.select_streams(["users"])
    return source


def _warm_up(source) -> None:
    """Run the connector's spec and discover now, so a timed read() does only the read."""
    source.validate_config()
    _ = source.discovered_catalog


def _make_cache(kind: str):
    from _setup import make_cache

    return make_cache(kind, SCHEMAS[kind], _work_dir() / f"staging-{kind}")


def _time_cache_step() -> dict[str, float]:
    """Accumulate the time PyAirbyte spends in write_stream_data (staged files -> tables)."""
    from airbyte.shared.sql_processor import SqlProcessorBase

    spent = {"seconds": 0.0}
    original = SqlProcessorBase.write_stream_data

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - started

    SqlProcessorBase.write_stream_data = timed
    return spent


def _drop_schema(schema: str) -> None:
    import psycopg2

    from pyairbyte import settings

    with psycopg2.connect(**settings.postgres_settings().psycopg2_kwargs()) as conn:
        conn.cursor().execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _row_count(schema: str) -> int:
    import psycopg2

    from pyairbyte import settings

    with psycopg2.connect(**settings.postgres_settings().psycopg2_kwargs()) as conn:
        cur = conn.cursor()
        cur.execute(f'SELECT count(*), count(DISTINCT id) FROM "{schema}".users')
        total, distinct = cur.fetchone()
    if total != distinct:
        raise SystemExit(f"{schema}.users has {total} rows but {distinct} distinct ids")
    return total


# ---- variants (each runs in its own process) ------------------------------------------------


def variant_emit(args) -> dict:
    source = _faker_source(args)
    catalog_file = _work_dir() / "users-catalog.json"
    config_file = _work_dir() / "faker-config.json"
    catalog_file.write_text(source.get_configured_catalog().model_dump_json(exclude_none=True))
    config_file.write_text(json.dumps(_faker_config(args)))
    connector = source.executor._get_connector_path()  # the venv's `source-faker` script

    spec_times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([str(connector), "spec"], check=True, capture_output=True)
        spec_times.append(time.perf_counter() - started)

    spec_cpu = _cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    records = 0
    with subprocess.Popen(
        [str(connector), "read", "--config", str(config_file), "--catalog", str(catalog_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as process:
        for line in process.stdout:
            records += line.startswith(b'{"type":"RECORD"') or line.startswith(b'{"type": "RECORD"')
    emit_seconds = time.perf_counter() - started
    if records != args.records:
        raise SystemExit(f"connector emitted {records} user records, expected {args.records}")
    return {
        "emit_seconds": emit_seconds,
        "connector_cpu_seconds": _cpu_seconds(resource.RUSAGE_CHILDREN) - spec_cpu,
        "connector_start_seconds": statistics.median(spec_times),
        "connector_peak_rss_mb": _peak_rss_mb(resource.RUSAGE_CHILDREN),
    }


def variant_read(args) -> dict:
    """PyAirbyte reading the same records with no cache at all: the floor for any full sync."""
    source = _faker_source(args)
    _warm_up(source)
    started = time.perf_counter()
    dataset = source.get_records("users")  # keep a reference while iterating (field notes)
    records = sum(1 for _ in dataset)
    seconds = time.perf_counter() - started
    if records != args.records:
        raise SystemExit(f"PyAirbyte read {records} user records, expected {args.records}")
    return {"read_seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def _variant_sync(kind: str, args) -> dict:
    _drop_schema(SCHEMAS[kind])
    shutil.rmtree(_work_dir() / f"staging-{kind}", ignore_errors=True)
    source = _faker_source(args)
    cache = _make_cache(kind)
    cache_step = _time_cache_step()
    _warm_up(source)

    cpu_before = _cpu_seconds(), _cpu_seconds(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    source.read(cache)
    result = {
        "full_sync_seconds": time.perf_counter() - started,
        "cpu_seconds": _cpu_seconds() - cpu_before[0],
        "connector_cpu_seconds": _cpu_seconds(resource.RUSAGE_CHILDREN) - cpu_before[1],
        "cache_step_seconds": cache_step["seconds"],
        "rows": _row_count(SCHEMAS[kind]),
    }
    if kind == "copy_serial":
        # Each write stages into a directory of its own under cache_dir.
        result["staged_files"] = [str(p) for p in sorted(cache.cache_dir.rglob("users_*"))]
    if kind == "copy":
        started = time.perf_counter()
        source.read(cache)
        result["rerun_warm_seconds"] = time.perf_counter() - started
        cold_source = _faker_source(args)
        started = time.perf_counter()
        cold_source.read(cache)
        result["rerun_cold_seconds"] = time.perf_counter() - started
        result["rows_after_reruns"] = _row_count(SCHEMAS[kind])
    result["peak_rss_mb"] = _peak_rss_mb()
    result["connector_peak_rss_mb"] = _peak_rss_mb(resource.RUSAGE_CHILDREN)
    return result


def variant_stock(args) -> dict:
    return _variant_sync("stock", args)


def variant_copy(args) -> dict:
    return _variant_sync("copy", args)


def variant_copy_serial(args) -> dict:
    """CopyPostgresCache with one staged file, so that nothing loads before the read ends:
    its cache step is the whole load, comparable with bare parse + COPY."""
    from pyairbyte.utils.postgres_copy_cache.staging import FastJsonlWriter

    FastJsonlWriter.MAX_BATCH_SIZE = args.records + 1
    return _variant_sync("copy_serial", args)


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, default=float)  # baseline only
    elif isinstance(value, bool):
        return "t" if value else "f"
    elif not isinstance(value, str):
        return str(value)
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


class _LineStream(io.RawIOBase):
    """A file-like object over an iterator of bytes chunks, for copy_expert."""

    def __init__(self, chunks) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def variant_bare(args) -> dict:
    """Parse the staged records in Python and COPY them: the minimum any cache step must do."""
    import psycopg2

    from pyairbyte import settings

    files = [Path(p) for p in args.staged_files]
    schema = SCHEMAS["bare"]
    with psycopg2.connect(**settings.postgres_settings().psycopg2_kwargs()) as conn:
        cur = conn.cursor()
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
        cur.execute(f'CREATE TABLE "{schema}".users (LIKE "{SCHEMAS["copy"]}".users)')
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'users' ORDER BY ordinal_position",
            (schema,),
        )
        columns = [name for (name,) in cur.fetchall()]
        conn.commit()

        def chunks():
            for path in files:
                with gzip.open(path, "rt", encoding="utf-8") as staged:
                    batch = []
                    for line in staged:
                        record = json.loads(line, parse_float=Decimal)
                        batch.append("\t".join(_copy_text(record.get(c)) for c in columns))
                        if len(batch) == 2000:
                            yield ("\n".join(batch) + "\n").encode()
                            batch = []
                    if batch:
                        yield ("\n".join(batch) + "\n").encode()

        started = time.perf_counter()
        cur.execute("SET TimeZone = 'UTC'")
        cur.copy_expert(f'COPY "{schema}".users FROM STDIN', _LineStream(chunks()), size=1 << 20)
        conn.commit()
        seconds = time.perf_counter() - started
    return {
        "cache_step_seconds": seconds,
        "rows": _row_count(schema),
        "peak_rss_mb": _peak_rss_mb(),
    }


VARIANTS = {
    "emit": variant_emit,
    "read": variant_read,
    "stock": variant_stock,
    "copy": variant_copy,
    "copy_serial": variant_copy_serial,
    "bare": variant_bare,
}


# ---- orchestration ----------------------------------------------------------------------------


def _run_variant(name: str, args, extra: list[str] | None = None) -> dict:
    command = [sys.executable, __file__, "--variant", name, "--records", str(args.records)]
    command += ["--seed", str(args.seed), *(extra or [])]
    print(f"running {name} ...", file=sys.stderr, flush=True)
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-3000:] + completed.stderr[-5000:])
        raise SystemExit(f"variant {name} failed (exit {completed.returncode})")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:7.2f} s"


def _fmt_mb(value: float | None) -> str:
    return "-" if value is None else f"{value:6.0f} MB"


def _check(label: str, value: float, target: float, unit: str = "x") -> str:
    verdict = "ok" if value <= target else "MISSED"
    return f"  {label:<40} {value:7.2f}{unit}  (target <= {target}{unit})  {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--staged-files", nargs="*", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=2, help="emit/copy rounds (best is used)")
    parser.add_argument("--keep", action="store_true", help="keep the bench schemas")
    args = parser.parse_args()

    if args.variant:
        # Child process: print one JSON line for the parent.
        print(json.dumps(VARIANTS[args.variant](args)))
        return

    # A fresh database of its own (the children inherit POSTGRES_* from here).
    from _setup import bench_database

    bench_database("dataplatform_bench_cache")
    # The machine is shared and its load swings: emit and copy alternate for several rounds and
    # the fastest of each is compared (the run least disturbed by other work).
    load_before = os.getloadavg()[0]
    emits, reads, copies, serials = [], [], [], []
    for _ in range(args.rounds):
        emits.append(_run_variant("emit", args))
        reads.append(_run_variant("read", args))
        copies.append(_run_variant("copy", args))
        serials.append(_run_variant("copy_serial", args))
    stock = _run_variant("stock", args)
    bare = _run_variant("bare", args, ["--staged-files", *serials[-1]["staged_files"]])
    load_after = os.getloadavg()[0]
    if not args.keep:
        for schema in SCHEMAS.values():
            _drop_schema(schema)
    for path in serials[-1]["staged_files"]:
        Path(path).unlink(missing_ok=True)
    emit = min(emits, key=lambda r: r["emit_seconds"])
    read = min(reads, key=lambda r: r["read_seconds"])
    serial = min(serials, key=lambda r: r["full_sync_seconds"])
    serial["cache_step_seconds"] = min(r["cache_step_seconds"] for r in serials)
    copy = min(copies, key=lambda r: r["full_sync_seconds"])
    copy["cache_step_seconds"] = min(r["cache_step_seconds"] for r in copies)
    copy["rerun_warm_seconds"] = min(r["rerun_warm_seconds"] for r in copies)
    copy["rerun_cold_seconds"] = min(r["rerun_cold_seconds"] for r in copies)
    copy["peak_rss_mb"] = max(r["peak_rss_mb"] for r in copies)
    emit["connector_start_seconds"] = min(r["connector_start_seconds"] for r in emits)

    bare_step = bare["cache_step_seconds"]
    print(f"\nfaker users, {args.records} records, seed {args.seed}")
    print(f"load average: {load_before:.1f} before, {load_after:.1f} after (2 cores)")
    for label, runs, key in (
        ("emit", emits, "emit_seconds"),
        ("PyAirbyte read, no cache", reads, "read_seconds"),
        ("copy full sync", copies, "full_sync_seconds"),
        ("copy cache step", copies, "cache_step_seconds"),
        ("copy loading after read, full sync", serials, "full_sync_seconds"),
        ("copy loading after read, cache step", serials, "cache_step_seconds"),
    ):
        print(f"  rounds, {label}: " + ", ".join(f"{r[key]:.2f} s" for r in runs))
    print("(best of each below; peak RSS is the highest)\n")
    header = f"{'variant':<22}{'cache step':>12}{'x bare':>8}{'full sync':>12}"
    print(header + f"{'x emit':>8}{'peak RSS':>11}{'connector RSS':>15}")
    rows = [
        ("source emit (alone)", None, emit["emit_seconds"], None, emit["connector_peak_rss_mb"]),
        ("PyAirbyte, no cache", None, read["read_seconds"], read["peak_rss_mb"], None),
        ("stock PostgresCache", stock["cache_step_seconds"], stock["full_sync_seconds"],
         stock["peak_rss_mb"], stock["connector_peak_rss_mb"]),
        ("CopyPostgresCache", copy["cache_step_seconds"], copy["full_sync_seconds"],
         copy["peak_rss_mb"], copy["connector_peak_rss_mb"]),
        ("  same, load after read", serial["cache_step_seconds"], serial["full_sync_seconds"],
         serial["peak_rss_mb"], serial["connector_peak_rss_mb"]),
        ("bare parse + COPY", bare_step, None, bare["peak_rss_mb"], None),
    ]  # fmt: skip
    for name, step, full, rss, connector_rss in rows:
        step_ratio = f"{step / bare_step:7.2f}x" if step is not None else f"{'-':>8}"
        full_ratio = f"{full / emit['emit_seconds']:7.2f}x" if full is not None else f"{'-':>8}"
        print(
            f"{name:<22}{_fmt_s(step):>12}{step_ratio}{_fmt_s(full):>12}{full_ratio}"
            f"{_fmt_mb(rss):>11}{_fmt_mb(connector_rss):>15}"
        )
    start = emit["connector_start_seconds"]
    print(f"\nconnector start (spec, median of 3): {start:.2f} s")
    print(f"rerun, no new data, same Source:      {copy['rerun_warm_seconds']:.2f} s")
    print(f"rerun, no new data, new Source:       {copy['rerun_cold_seconds']:.2f} s")
    print(f"rows: stock {stock['rows']}, copy {copy['rows']} -> {copy['rows_after_reruns']}")
    print(
        f"CPU seconds: connector alone {emit['connector_cpu_seconds']:.1f}; full sync with copy:"
        f" connector {copy['connector_cpu_seconds']:.1f} + sync process {copy['cpu_seconds']:.1f};"
        f" with stock: {stock['connector_cpu_seconds']:.1f} + {stock['cpu_seconds']:.1f}"
        " (PostgreSQL server CPU not included)"
    )
    print("\ntargets (CopyPostgresCache):")
    print(_check("cache step / bare parse+COPY", copy["cache_step_seconds"] / bare_step, 1.5))
    print(_check("  (whole load after read) / bare", serial["cache_step_seconds"] / bare_step, 1.5))
    print(_check("full sync / source emit", copy["full_sync_seconds"] / emit["emit_seconds"], 1.2))
    print(
        f"  {'(PyAirbyte with no cache / source emit':<40} "
        f"{read['read_seconds'] / emit['emit_seconds']:7.2f}x: the floor for any cache)"
    )
    print(_check("peak RSS", copy["peak_rss_mb"], 400, " MB"))
    print(_check("rerun (same Source) / connector start", copy["rerun_warm_seconds"] / start, 1.5))
    print(_check("rerun (new Source) / connector start", copy["rerun_cold_seconds"] / start, 1.5))
    step_gain = stock["cache_step_seconds"] / copy["cache_step_seconds"]
    print(
        f"\nstock / copy: cache step {step_gain:.1f}x,"
        f" full sync {stock['full_sync_seconds'] / copy['full_sync_seconds']:.2f}x,"
        f" peak RSS {stock['peak_rss_mb'] / copy['peak_rss_mb']:.1f}x"
    )


if __name__ == "__main__":
    main()
