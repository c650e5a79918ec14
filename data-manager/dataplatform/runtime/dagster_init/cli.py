"""The dagster-init command: read code-locations.json, then supervise; or report its health."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from dataplatform.runtime import paths, processes

log = logging.getLogger("dagster-init")


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def healthcheck() -> int:
    """0 when the running supervisor finished starting and every location serves; else 1.

    Reads the status file only (no Dagster import), so it is cheap enough for a container
    HEALTHCHECK; compose starts the webserver and daemon once this passes.
    """
    from dataplatform.runtime.dagster_init.supervisor import SERVING_STATES

    serving = {state.value for state in SERVING_STATES}
    try:
        status = json.loads(paths.supervisor_status_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        print("dagster-init: no status yet")
        return 1
    pid = processes.read_live_pid(paths.run_dir() / "dagster-init.pid")
    if pid != status.get("supervisor_pid"):
        print("dagster-init: not running")
        return 1
    waiting = [n for n, i in status["locations"].items() if i["state"] not in serving]
    if not status.get("initial_round_complete") or waiting:
        print(f"dagster-init: waiting for {', '.join(waiting) or 'first start'}")
        return 1
    print("dagster-init: all locations serving")
    return 0


def serve(
    bind_host: str | None,
    source: Path | None,
    child_output: str | None,
    host_filter: str | None = None,
) -> int:
    """Validate the locations, then supervise the valid, enabled ones until SIGTERM.

    With a host filter, only the entries whose `host` is that host: one dagster-init per machine,
    each serving its share, while the generated workspace lists every entry at its host.
    """
    from dataplatform import settings
    from dataplatform.runtime.code_locations import CodeLocationsError
    from dataplatform.runtime.dagster_init.launchers import launcher_for
    from dataplatform.runtime.dagster_init.reconcile import (
        select_locations,
        write_shared_workspace,
    )
    from dataplatform.runtime.dagster_init.supervisor import Supervisor, Timing

    configure_logging()
    try:
        supervisor_settings = settings.supervisor()
        source = source or settings.paths().resolved_code_locations_file()
    except settings.SettingsError as exc:
        log.error("%s", exc)
        return 2
    host_filter = host_filter or supervisor_settings.host_filter
    try:
        active, errors = select_locations(source, host_filter)
    except CodeLocationsError as exc:
        log.error("cannot read code locations:\n%s", exc)
        return 2
    if not active:
        for finding in errors:
            log.error("%s", finding)
        where = f" for host {host_filter}" if host_filter is not None else ""
        log.error("no enabled, valid code location%s in %s; nothing to serve", where, source)
        return 2
    try:
        # Before any server starts: the webserver and daemon containers wait for this one's
        # health, then read the file; a volume kept from an older image has its entries.
        shared = write_shared_workspace(source)
    except (settings.SettingsError, OSError) as exc:
        log.error("cannot write the shared workspace (DATAPLATFORM_SHARED_WORKSPACE): %s", exc)
        return 2
    if shared is not None:
        log.info("shared workspace %s written for the webserver and daemon", shared)
    child_logs = (child_output or supervisor_settings.child_output) == "file"
    launcher = launcher_for(
        supervisor_settings.mode,
        child_logs,
        supervisor_settings.preload_modules(),
        supervisor_settings.backoff_max,
    )
    log.info("mode %s (DAGSTER_INIT_MODE)", launcher.mode)
    supervisor = Supervisor(
        active,
        errors,
        bind_host or supervisor_settings.bind_host,
        source,
        Timing.from_settings(supervisor_settings),
        child_logs=child_logs,
        launcher=launcher,
        host_filter=host_filter,
    )
    return supervisor.run()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--bind-host",
    help="Address the code servers listen on. Default: $DAGSTER_GRPC_BIND_HOST, else 127.0.0.1.",
)
@click.option(
    "--file",
    "source",
    type=click.Path(dir_okay=False, path_type=Path),
    help="code-locations.json. Default: $CODE_LOCATIONS_FILE, else the repository's.",
)
@click.option(
    "--child-output",
    type=click.Choice(["file", "inherit"]),
    help="Code server output: a log file each (local) or our stdout (containers). "
    "Default: $DAGSTER_INIT_CHILD_OUTPUT, else file.",
)
@click.option(
    "--host-filter",
    help="Serve only the entries whose `host` is this (one dagster-init per machine). "
    "Default: $DAGSTER_INIT_HOST, else every entry.",
)
@click.option(
    "--healthcheck",
    "check_health",
    is_flag=True,
    help="Exit 0 if a running dagster-init has every location up (for container health).",
)
def command(
    bind_host: str | None,
    source: Path | None,
    child_output: str | None,
    host_filter: str | None,
    check_health: bool,
) -> None:
    """Start and supervise one gRPC code server per enabled code location."""
    if check_health:
        sys.exit(healthcheck())
    sys.exit(serve(bind_host, source, child_output, host_filter))
