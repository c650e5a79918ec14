"""`dataplatform`: one command for the connector lifecycle and for running the platform.

    dataplatform connector add NAME [--connector-yaml PATH] [--streams a,b] [--port P] [--dry-run]
    dataplatform connector remove NAME [--drop-data] [--dry-run]
    dataplatform check [--no-database]
    dataplatform configs write|check [--file code-locations.json]
    dataplatform platform start|stop|status      # local mode (platform/start.sh, stop.sh)
    dataplatform up                              # `make up`: start, run the sample jobs, report
    dataplatform dagster-init [--bind-host H] [--file F] [--healthcheck]

The commands only parse options and print; the logic lives in dataplatform.lifecycle,
dataplatform.local and dataplatform.runtime, imported when a command runs so that
`dagster-init --healthcheck` stays cheap.

Exit status: 0 done (or check clean), 1 a problem the message explains, 2 usage error or a
setting or config file that cannot be used.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click

from dataplatform.lifecycle.errors import LifecycleError
from dataplatform.runtime.dagster_init.cli import command as dagster_init_command

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
    """Add, remove and check connectors; generate configs; run the platform."""
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


main.add_command(dagster_init_command, name="dagster-init")


@main.group()
def configs() -> None:
    """Write or check the files generated from code-locations.json (workspace, ports)."""


_FILE_OPTION = click.option(
    "--file",
    "source",
    type=click.Path(dir_okay=False, path_type=Path),
    help="code-locations.json (default: $CODE_LOCATIONS_FILE, else the repository's).",
)


def _config_error(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


@configs.command("write")
@_FILE_OPTION
def configs_write(source: Path | None) -> None:
    """Regenerate the committed files from code-locations.json."""
    from dataplatform.runtime import derived_configs
    from dataplatform.runtime.code_locations import CodeLocationsError

    try:
        changed = derived_configs.write(source)
    except (CodeLocationsError, derived_configs.DerivedConfigError) as exc:
        _config_error(exc)
    for path in changed:
        click.echo(f"wrote {path}")
    if not changed:
        click.echo("derived configs already match code-locations.json")


@configs.command("check")
@_FILE_OPTION
def configs_check(source: Path | None) -> None:
    """Exit 1 with a diff if the committed files drifted from code-locations.json."""
    from dataplatform.runtime import derived_configs
    from dataplatform.runtime.code_locations import CodeLocationsError

    try:
        diffs = derived_configs.drift(source)
    except (CodeLocationsError, derived_configs.DerivedConfigError) as exc:
        _config_error(exc)
    for diff in diffs.values():
        click.echo(diff, nl=False)
    if diffs:
        names = ", ".join(str(p) for p in diffs)
        click.echo(
            f"\ndrifted from code-locations.json: {names}\nfix: {derived_configs.REGENERATE}"
        )
        sys.exit(1)
    click.echo("derived configs match code-locations.json")


def _run_local(action):
    """Run a local-mode action; its known failures are one line on stderr and exit 2."""
    from dataplatform.local.platform import PlatformError
    from dataplatform.settings import SettingsError

    try:
        return action()
    except (PlatformError, SettingsError) as exc:
        click.echo(f"[platform] error: {exc}", err=True)
        sys.exit(2)


@main.group()
def platform() -> None:
    """Start, stop or inspect the platform on this machine (local mode)."""


@platform.command("start")
def platform_start() -> None:
    """Start whatever is not running yet (safe to repeat); exit 1 if a location did not load."""
    from dataplatform.local import platform as local

    state = _run_local(local.start)
    sys.exit(0 if set(state["loaded"]) >= set(state["locations"]) else 1)


@platform.command("stop")
def platform_stop() -> None:
    """Stop every process the platform started, by PID, then its PostgreSQL; data is kept."""
    from dataplatform.local import platform as local

    _run_local(local.stop)


@platform.command("status")
def platform_status() -> None:
    """Print the PIDs of the platform's processes and each code server's state, as JSON."""
    from dataplatform.local import platform as local

    click.echo(json.dumps(_run_local(local.status), indent=2))


@main.command("up")
def up() -> None:
    """Start the platform, run the sample pipelines through it and report (`make up`)."""
    from dataplatform.local import up as local_up

    sys.exit(_run_local(local_up.run))


if __name__ == "__main__":
    main()
