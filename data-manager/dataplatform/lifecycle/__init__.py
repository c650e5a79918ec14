"""The connector lifecycle behind the `dataplatform` console script (dataplatform/cli.py).

- `add`: connector YAML -> PyAirbyte check + discover -> a planned set of files (code location,
  dbt sources/staging/reporting, code-locations.json entry, derived configs), written all at once.
- `remove`: the guide's removal procedure as one planned set of deletions and edits.
- `doctor`: `dataplatform check`, every cross-file rule the guide's Troubleshooting lists.

Framework-free like utils/: Dagster, dbt and airbyte run in subprocesses or are imported lazily.
"""
