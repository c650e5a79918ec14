"""Transform asset vs bare `dbt build` on the same models, measured in one run.

The asset (`transform_sample_product_data`) runs `dbt build --select source:sample_connector+`
through dagster-dbt with no `dbt parse` first, two ways: dbt as dagster-dbt's subprocess
(DATAPLATFORM_DBT_FORK=false) and dbt forked from the run worker with dbt already imported, as
in a warm run worker (dagster_code/lib/dbt_fork.py). The baseline is the same `dbt build` run
directly with the prepared manifest in place. Target: asset step / bare <= 1.2. The whole
in-process run (Dagster's run set-up around the step) is printed too; the run overhead of a
real deployment is measured by bench/platform_startup.py.

    .venv/bin/python bench/transform_overhead.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

# `python bench/<script>.py` puts bench/ on sys.path, so its helpers import directly.
from _setup import bench_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    bench_database()
    from dagster import DagsterInstance, materialize

    from dagster_code.lib.dbt import connector_selection, dbt_resource
    from dagster_code.sample_product_sync.assets import (
        sync_sample_connector,
        transform_sample_product_data,
    )
    from dataplatform.dbt import settings as dbt_settings
    from dataplatform.dbt.manifest import dbt_executable, ensure_manifest
    from dataplatform.local.sample_api import SampleProductsApi

    api = SampleProductsApi().start()
    os.environ["SAMPLE_API_URL"] = api.url
    ensure_manifest()
    instance = DagsterInstance.ephemeral()
    resources = {"dbt": dbt_resource()}
    assert materialize([sync_sample_connector], instance=instance).success

    # The models the location owns: its source's, minus those that also read another source.
    select, exclude = connector_selection(ensure_manifest(), "sample_connector")
    bare_cmd = [dbt_executable(), "build", "--select", select, "--quiet"]
    if exclude:
        bare_cmd += ["--exclude", exclude]
    env = {**os.environ, "DBT_PROFILES_DIR": str(dbt_settings.profiles_dir())}
    import dbt.cli.main  # noqa: F401 - as the fork server pre-loads it for warm run workers

    bare, times = [], {"subprocess": ([], []), "fork": ([], [])}
    for _ in range(args.repeat):  # interleaved, so machine noise hits all alike
        started = time.perf_counter()
        subprocess.run(bare_cmd, cwd=dbt_settings.project_dir(), env=env, check=True)
        bare.append(time.perf_counter() - started)

        for how, (step, run) in times.items():
            os.environ["DATAPLATFORM_DBT_FORK"] = "true" if how == "fork" else "false"
            started = time.perf_counter()
            result = materialize(
                [transform_sample_product_data],
                instance=instance,
                resources=resources,
                selection=[transform_sample_product_data],
            )
            run.append(time.perf_counter() - started)
            assert result.success
            step.append(_step_seconds(instance, result.run_id))
    api.stop()

    bare_s = statistics.median(bare)
    print(f"models: {select} (2 models, 8 tests), median of {args.repeat} interleaved runs")
    print(f"{'bare dbt build':<44}{bare_s:7.2f} s")
    for how, (step, run) in times.items():
        step_s, run_s = statistics.median(step), statistics.median(run)
        print(f"{'transform asset step, dbt ' + how:<44}{step_s:7.2f} s   "
              f"{step_s / bare_s:5.2f}x  (target <= 1.20)")  # fmt: skip
        print(f"{'whole in-process run, dbt ' + how:<44}{run_s:7.2f} s   {run_s / bare_s:5.2f}x")


def _step_seconds(instance, run_id: str) -> float:
    """STEP_START -> STEP_SUCCESS of the transform step, from the run's event log."""
    stamps = {
        entry.dagster_event.event_type_value: entry.timestamp
        for entry in instance.all_logs(run_id)
        if entry.dagster_event
        and entry.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS")
    }
    return stamps["STEP_SUCCESS"] - stamps["STEP_START"]


if __name__ == "__main__":
    main()
