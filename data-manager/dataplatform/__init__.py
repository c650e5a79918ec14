"""The data platform around the guide's utils: everything that runs, supervises or changes it.

- `runtime/`: the code-location runtime (dagster-init supervisor, code-locations.json, the
  configs derived from it, GraphQL helpers, process control).
- `local/`: the local mode that `make up` runs (private PostgreSQL, the sample products API,
  start/stop of the whole platform, running the sample pipelines).
- `lifecycle/`: `connector add`, `connector remove` and the `check` doctor.
- `dbt/`: dbt's settings and the prepared manifest the code locations load.
- `cli.py`: the `dataplatform` command.

`pyairbyte` (the guide's utils and settings) never imports this package.
"""
