"""The asset graph of code locations as plain JSON: what a snapshot records and a diff shows.

Run as `python -m tests.dagster_code.asset_graph LOCATION...` it prints {location: graph} for
the given locations; the snapshot test runs it in a subprocess with the locations' settings
removed from the environment, so a location that reads a setting while it loads fails there.

Recorded per location: every asset key with its group, kinds, upstream keys, the op that computes
it (with its retry policy, if any) and the first paragraph of its description; the asset checks;
every job with its asset and check selection, tags and description; schedules and sensors with
their default status; resource keys and the executor.
Metadata is left out: dagster-dbt fills it with manifest details that change with any model.
"""

from __future__ import annotations

import importlib
import json
import sys


def _first_paragraph(text: str | None) -> str:
    # dbt model descriptions are followed by the model's raw SQL; the SQL is not graph shape.
    return (text or "").strip().split("\n\n")[0].strip()


def _user(key) -> str:
    return key.to_user_string()


def _check(key) -> str:
    return f"{key.asset_key.to_user_string()}:{key.name}"


def location_graph(module: str) -> dict:
    defs = importlib.import_module(module).defs
    graph = defs.resolve_asset_graph()
    assets = {}
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: _user(s.key)):
        node = graph.get(spec.key)
        entry = {
            "group": spec.group_name,
            "kinds": sorted(spec.kinds),
            "deps": sorted(_user(k) for k in node.parent_keys),
            "description": _first_paragraph(spec.description),
        }
        if node.is_materializable:
            op = defs.resolve_assets_def(spec.key).node_def
            entry["op"] = op.name
            if op.retry_policy is not None:
                policy = op.retry_policy
                entry["retry"] = {
                    "max_retries": policy.max_retries,
                    "delay": policy.delay,
                    "backoff": policy.backoff.value if policy.backoff else None,
                }
        else:
            entry["external"] = True
        assets[_user(spec.key)] = entry
    jobs = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):  # Dagster's implicit asset job
            continue
        layer = job.asset_layer
        jobs[job.name] = {
            "description": job.description,
            "tags": dict(sorted(job.tags.items())),
            "executor": job.executor_def.name,
            "assets": sorted(_user(k) for k in layer.selected_asset_keys),
            "checks": sorted(_check(k) for data in layer.data for k in data.assets_def.check_keys),
        }
    repository = defs.get_repository_def()
    return {
        "assets": assets,
        "checks": sorted(_check(k) for k in graph.asset_check_keys),
        "jobs": jobs,
        "schedules": {
            s.name: {
                "cron": s.cron_schedule,
                "job": s.job_name,
                "timezone": s.execution_timezone,
                "default_status": s.default_status.value,
            }
            for s in sorted(repository.schedule_defs, key=lambda s: s.name)
        },
        "sensors": {
            s.name: {"default_status": s.default_status.value}
            for s in sorted(repository.sensor_defs, key=lambda s: s.name)
        },
        "resources": sorted(repository.get_top_level_resources()),
    }


def main(locations: list[str]) -> None:
    graphs = {name: location_graph(f"dagster_code.{name}") for name in locations}
    # The last line is the result: a location may print while it loads.
    print(json.dumps(graphs, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
