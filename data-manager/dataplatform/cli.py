"""`dataplatform`: one command for the connector lifecycle and for running the platform.

    dataplatform connector add NAME [--connector-yaml PATH] [--streams a,b] [--port P] [--dry-run]
    dataplatform connector remove NAME [--drop-data] [--dry-run]
    dataplatform connector refresh-staging NAME [--dry-run]
    dataplatform connector state show|reset NAME [--stream S] [--yes] [--cache C]
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

# When no platform runs (a running one is told by `connector add`/`remove` itself).
RELOAD_HINT = (
    "restart the platform so its code servers, webserver and daemon read the new "
    "code-locations.json: `bash platform/stop.sh && bash platform/start.sh` locally, or "
    "`docker compose up -d --build` (all three platform services run the rebuilt image); "
    "`docker compose exec data-manager dataplatform connector ...` serves a change live"
)


def _serve_live(present: list[str], absent: list[str], hint: str) -> None:
    """Have a running platform pick up the change (dataplatform.lifecycle.live), or say how."""
    from dataplatform.lifecycle.live import apply_live

    change = apply_live(present, absent)
    if change is None:
        click.echo(hint)
        return
    click.echo(change.describe())
    if not change.ok:
        sys.exit(1)


def _error(problem: object, status: int = 1) -> None:
    click.echo(f"error: {problem}", err=True)
    sys.exit(status)


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
    """Add or remove a connector (its code location, dbt models and config entries); refresh its
    staging models from the cache tables; show or reset its sync state."""


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
        f"parses the new models. Job: {plan.spec.job}."
    )
    _serve_live(present=[name], absent=[], hint=f"next, to serve it: {RELOAD_HINT}")


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
    click.echo(f"removed code location {name}.")
    _serve_live(present=[], absent=[name], hint=f"next, to stop serving it: {RELOAD_HINT}")


@connector.command("refresh-staging")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
def connector_refresh_staging(name: str, dry_run: bool) -> None:
    """Regenerate the staging models of code location NAME from its cache tables.

    After a sync added columns to a cache table (new or undeclared properties) or moved a
    property to a typed sibling column (e.g. price_jsonb), `dataplatform check` warns that the
    staging model no longer matches its table. This discovers the streams' schemas (as `connector
    add` does), reads each cache table's columns and column map from PostgreSQL, and rewrites
    only the generated models/staging/staging_<stream>.sql files, all or none: if dbt no longer
    parses the project, every file is restored. Hand-written staging models are left alone.

    NAME is a code location (as given to `connector add`) or the connector YAML's `name:` of
    the one location that syncs it. It refuses when NAME is unknown, PostgreSQL is not reachable,
    or a stream's cache table does not exist yet (run the location's job once first).
    """
    from dataplatform.lifecycle.project import Project
    from dataplatform.lifecycle.refresh_staging import apply_refresh, plan_refresh

    project = Project.from_settings()
    try:
        plan = plan_refresh(project, name)
        click.echo(plan.describe())
        if dry_run:
            click.echo("dry run: nothing was written")
            return
        if plan.empty:
            click.echo(f"the staging models of {plan.location} already match their cache tables")
            return
        apply_refresh(plan)
    except LifecycleError as exc:
        _fail(exc)
    click.echo(
        f"refreshed the staging models of code location {plan.location}; dbt parses the "
        "project. They take effect at the next transform (the location's job)."
    )


@connector.group("state")
def connector_state() -> None:
    """Show or reset a connector's incremental sync state (PyAirbyte's, in the cache)."""


def _state_target(name: str, cache_name: str) -> tuple[str, dict[str, str | None]]:
    """(connector name, its streams -> cursor field) for a connector or location NAME, with any
    warning printed; exit 1 if NAME is neither a connector YAML's `name` nor a location that
    syncs a connector, or the cache is unknown."""
    from pyairbyte.utils.common_cache import CACHE_CONFIGS

    if cache_name not in CACHE_CONFIGS:
        _error(f"unknown cache {cache_name!r}; known: {', '.join(CACHE_CONFIGS)}")
    connector_name, streams, warning = _connector_streams(name)
    if warning:
        click.echo(warning, err=True)
    return connector_name, streams


def _connector_streams(name: str) -> tuple[str, dict[str, str | None], str | None]:
    from dataplatform.lifecycle.location_connectors import connector_of
    from dataplatform.lifecycle.project import Project, entries_by_name, read_document
    from pyairbyte.errors import UnknownConnectorError
    from pyairbyte.utils.connector_streams import connector_streams

    try:
        return connector_streams(name)
    except UnknownConnectorError:
        project = Project.from_settings()
        try:
            entry = entries_by_name(read_document(project)).get(name)
        except LifecycleError:
            entry = None
        mapped = connector_of(entry)
        try:
            if mapped is not None:
                return connector_streams(mapped)
        except UnknownConnectorError as exc:
            _error(f"code location {name!r} syncs connector {mapped!r}, but {exc}")
        click.echo(
            f"error: no connector or code location named {name!r}: no connector YAML in "
            f"{project.connectors_dir} has `name: {name}`, and no entry in "
            f"{project.code_locations} syncs a connector of that name",
            err=True,
        )
        click.echo("fix: pass the connector YAML's `name:` or a code location's name", err=True)
        sys.exit(1)


_CACHE_OPTION = click.option(
    "--cache",
    "cache_name",
    default="default",
    show_default=True,
    help="The named cache (pyairbyte common_cache) whose schema holds the state.",
)


@connector_state.command("show")
@click.argument("name")
@_CACHE_OPTION
def connector_state_show(name: str, cache_name: str) -> None:
    """Streams, cursor values, last sync time and row counts of connector (or location) NAME."""
    from dataplatform.lifecycle.state_view import render_state
    from pyairbyte.errors import ConnectorStateError
    from pyairbyte.utils.connector_state import read_connector_state

    connector_name, streams = _state_target(name, cache_name)
    try:
        state = read_connector_state(connector_name, streams=streams, cache_name=cache_name)
    except ConnectorStateError as exc:
        _error(exc)
    click.echo(render_state(state))


@connector_state.command("reset")
@click.argument("name")
@click.option("--stream", help="Reset only this stream (default: every stream).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_CACHE_OPTION
def connector_state_reset(name: str, stream: str | None, yes: bool, cache_name: str) -> None:
    """Delete the stored state of connector (or location) NAME and empty its tables, so its
    next sync is a full refresh. Other connectors' state and tables are never touched."""
    from pyairbyte.errors import ConnectorStateError
    from pyairbyte.utils.connector_state import apply_reset, plan_reset

    connector_name, streams = _state_target(name, cache_name)
    try:
        plan = plan_reset(connector_name, stream, known_streams=streams, cache_name=cache_name)
        click.echo(plan.describe())
        if plan.empty:
            return
        if not yes and not click.confirm("reset?", default=False):
            click.echo("nothing was changed")
            return
        done = apply_reset(plan, cache_name=cache_name)
    except ConnectorStateError as exc:
        _error(exc)
    click.echo(
        f"reset {', '.join(done.state_rows) or 'nothing'} of {connector_name}: the next sync "
        "reads everything again"
    )


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


@configs.command("write")
@_FILE_OPTION
def configs_write(source: Path | None) -> None:
    """Regenerate the committed files from code-locations.json."""
    from dataplatform.runtime import derived_configs
    from dataplatform.runtime.code_locations import CodeLocationsError

    try:
        changed = derived_configs.write(source)
    except (CodeLocationsError, derived_configs.DerivedConfigError) as exc:
        _error(exc, 2)
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
        _error(exc, 2)
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
