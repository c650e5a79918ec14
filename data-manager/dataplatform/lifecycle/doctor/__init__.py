"""`dataplatform check`: every rule the guide's Troubleshooting section learned the hard way.

Each finding says what is wrong, where, and how to fix it. Errors make the command exit 1;
warnings and notes do not. The checks, one module per kind, in the order they run:
- `locations`: code-locations.json is valid (the platform's own validator: names, modules, ports
  unique and in 4266-4299), and workspace.yaml, the compose ports and the Dockerfile EXPOSE match
  it, with the exact port that differs;
- `packages`: every entry has its package, every package directory its __init__.py, no location
  package is left without an entry (orphans, stale __pycache__), and every enabled module imports
  in a clean process and exports a loadable `defs`;
- `asset_tables`: across those modules, no asset key is defined twice and no table is
  materialized by two assets;
- `connectors`: every connector YAML is valid with its env variables set, names are unique, and
  every location's connector has a YAML;
- `dbt`: read through dbt's own manifest (static reading when dbt cannot parse), every source
  declares its schema and every source()/ref() resolves;
- `cache_columns`: when PostgreSQL is reachable, models that read the cache use its real column
  names and plan against the real tables;
- `staging_drift`: then, generated staging models that miss a column a sync added to their cache
  table, or select one a typed sibling replaced, are warnings whose fix is
  `dataplatform connector refresh-staging <location>`.
`report` holds the findings and the summary line.
"""

from __future__ import annotations

from dataplatform.lifecycle.doctor.asset_tables import check_asset_tables
from dataplatform.lifecycle.doctor.cache_columns import check_cache_columns
from dataplatform.lifecycle.doctor.connectors import check_connectors
from dataplatform.lifecycle.doctor.dbt import check_dbt, load_dbt_project
from dataplatform.lifecycle.doctor.locations import check_code_locations, check_derived_files
from dataplatform.lifecycle.doctor.packages import check_imports, check_packages
from dataplatform.lifecycle.doctor.report import Report
from dataplatform.lifecycle.project import Project, entries_by_name

__all__ = ["Report", "run_checks"]


def run_checks(project: Project | None = None, database: bool = True) -> Report:
    project = project or Project.from_settings()
    report = Report()
    doc = check_code_locations(project, report)
    if doc is not None:
        check_derived_files(project, doc, report)
        modules = check_packages(project, doc, report)
        results = check_imports(project, modules, report)
        location_of = {entry.get("module"): name for name, entry in entries_by_name(doc).items()}
        check_asset_tables(results, location_of, report)
    check_connectors(project, doc or {"code_locations": []}, report)
    dbt = load_dbt_project(project, report)
    check_dbt(project, dbt, report)
    if database:
        check_cache_columns(project, dbt, report)
    return report
