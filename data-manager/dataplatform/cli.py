"""`dataplatform`: the connector lifecycle, one command each (logic in dataplatform.lifecycle).

    dataplatform connector add NAME [--connector-yaml PATH] [--streams a,b] [--port P] [--dry-run]
    dataplatform connector remove NAME [--drop-data] [--dry-run]
    dataplatform check [--no-database]

Exit status: 0 done (or check clean), 1 a problem the message explains, 2 usage error.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click

from dataplatform.lifecycle.errors import LifecycleError

RELOAD_HINT = (
    "restart the platform so its code servers, webserver and daemon read the new "
    "code-locations.json: `bash platform/stop.sh && bash platform/start.sh` locally, or "
    "`docker compose up -d --build data-manager` and restart the webserver and daemon"
)


def _fail(exc: LifecycleError) -> None:
    click.echo(f"error: {exc.problem}", err=True)
    if exc.fix:
        click.echo(f"fix: {exc.fix}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Add, remove and check connectors of the data platform."""
    # google-cloud libraries that airbyte imports warn about Python 3.11's end of life in 2027.
    warnings.filterwarnings("ignore", "You are using a Python version", FutureWarning)


@main.group()
def connector() -> None:
    """Add or remove a connector (its code location, dbt models and config entries)."""


def _split_streams(value: str | None) -> list[str] | None:
    if not value:
        return None
    streams = [s.strip() for s in value.split(",") if s.strip()]
    return streams or None


@connector.command("add")
@click.argument("name")
@click.option(
    "--connector-yaml",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The connector YAML; copied into external-connectors/ (with a relative manifest). "
    "Default: the YAML in external-connectors/ named NAME.",
)
@click.option("--streams", help="Comma-separated streams (default: the YAML's, else all).")
@click.option("--port", type=int, help="gRPC port in 4266-4299 (default: the next free one).")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
def connector_add(
    name: str, connector_yaml: Path | None, streams: str | None, port: int | None, dry_run: bool
) -> None:
    """Check and discover the source, then create code location NAME and its dbt models."""
    from dataplatform.lifecycle.add import apply_add, plan_add
    from dataplatform.lifecycle.project import Project

    project = Project.from_settings()
    try:
        plan = plan_add(project, name, connector_yaml, _split_streams(streams), port)
        click.echo(plan.describe())
        if dry_run:
            click.echo("dry run: nothing was written")
            return
        apply_add(plan)
    except LifecycleError as exc:
        _fail(exc)
    click.echo(
        f"added code location {name}: `from dagster_code.{name} import defs` loads and dbt "
        f"parses the new models. Job: {plan.spec.job}.\nnext, to serve it: {RELOAD_HINT}"
    )


@connector.command("remove")
@click.argument("name")
@click.option(
    "--drop-data",
    is_flag=True,
    help="Also drop its cache tables (and PyAirbyte state) and its dbt tables/views.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
def connector_remove(name: str, drop_data: bool, dry_run: bool) -> None:
    """Remove code location NAME, its connector YAML, dbt files and config entries."""
    from dataplatform.lifecycle.project import Project
    from dataplatform.lifecycle.remove import apply_remove, plan_remove

    project = Project.from_settings()
    try:
        plan = plan_remove(project, name, drop_data)
        click.echo(plan.describe())
        if dry_run:
            click.echo("dry run: nothing was changed")
            return
        dropped = apply_remove(plan)
    except LifecycleError as exc:
        _fail(exc)
    if drop_data:
        click.echo(f"dropped: {', '.join(dropped) or 'nothing (no tables existed)'}")
    click.echo(f"removed code location {name}.\nnext, to stop serving it: {RELOAD_HINT}")


@main.command("check")
@click.option("--no-database", is_flag=True, help="Skip the checks that need PostgreSQL.")
def check(no_database: bool) -> None:
    """Check that configs, code locations, connector YAMLs and dbt models agree."""
    from dataplatform.lifecycle.doctor import run_checks

    report = run_checks(database=not no_database)
    for finding in report.findings:
        click.echo(finding.render())
    click.echo(report.summary())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
