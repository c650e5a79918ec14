"""Local mode: PostgreSQL, dagster-init, the webserver and the daemon on this machine.

    dataplatform platform start    # safe to repeat while up (platform/start.sh)
    dataplatform platform stop     # by PID; data is kept (platform/stop.sh)
    dataplatform platform status

Without POSTGRES_HOST a private PostgreSQL cluster runs under <platform dir>/postgres on
127.0.0.1:$LOCAL_PG_PORT (5433, beside a system PostgreSQL on 5432). Every process gets the same
environment: POSTGRES_*, DAGSTER_HOME (with platform/dagster.yaml copied in) and the local
workspace (hosts 127.0.0.1) generated from code-locations.json.
Webserver address: $DAGSTER_WEBSERVER_HOST (127.0.0.1) : $DAGSTER_WEBSERVER_PORT (3030).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dataplatform import settings as platform_settings
from dataplatform.local.postgres import LocalPostgres, LocalPostgresError
from dataplatform.local.watchdog import read_status as watchdog_status
from dataplatform.local.watchdog import status_file as watchdog_status_file
from dataplatform.runtime import paths, processes
from dataplatform.runtime.code_locations import (
    CodeLocationsError,
    code_locations_path,
    load_document,
    read_code_locations,
    workspace_config,
)
from dataplatform.runtime.dagster_graphql import DagsterGraphQL
from dataplatform.runtime.derived_configs import _source_label, write_local_workspace
from pyairbyte import settings
from pyairbyte.utils import pg

# Stop order: consumers first, the database last. A watchdog goes before its child, so that it
# stops the child rather than restarting it.
COMPONENTS = (
    "sample-api",
    "dagster-daemon-watchdog",
    "dagster-daemon",
    "dagster-webserver-watchdog",
    "dagster-webserver",
    "dagster-init",
)
# Run under a watchdog (local/watchdog.py): restarted with backoff when they exit.
SUPERVISED = ("dagster-daemon", "dagster-webserver")


class PlatformError(RuntimeError):
    pass


def _say(message: str) -> None:
    print(f"[platform] {message}", flush=True)


@dataclass(frozen=True)
class WebserverAddress:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def webserver_address() -> WebserverAddress:
    local = platform_settings.local_platform()
    return WebserverAddress(host=local.webserver_host, port=local.webserver_port)


def state_file() -> Path:
    return paths.run_dir() / "platform.json"


def read_state() -> dict:
    try:
        return json.loads(state_file().read_text())
    except FileNotFoundError:
        return {}


def _write_state(state: dict) -> None:
    processes.write_atomic(state_file(), json.dumps(state, indent=2) + "\n")


def pid_file(component: str) -> Path:
    return paths.run_dir() / f"{component}.pid"


def live_pid(component: str) -> int | None:
    return processes.read_live_pid(pid_file(component))


def local_postgres() -> LocalPostgres:
    return LocalPostgres(
        data_dir=paths.platform_dir() / "postgres" / "data",
        port=platform_settings.local_postgres().port,
    )


def ensure_postgres() -> dict:
    """POSTGRES_* for the platform: the configured server, or our private cluster."""
    if platform_settings.local_postgres().external_host:
        pg = settings.postgres_settings()
        return {"managed": False, "env": _pg_env(pg.host, pg.port, pg.user, pg.password, pg.dbname)}
    cluster = local_postgres()
    if not (cluster.data_dir / "postmaster.pid").exists() and not processes.port_is_free(
        "127.0.0.1", cluster.port
    ):
        raise PlatformError(
            f"port {cluster.port} is taken by another process, so the private PostgreSQL cannot "
            "start; set LOCAL_PG_PORT to a free port, or POSTGRES_HOST to use a running server"
        )
    try:
        cluster.start()
    except LocalPostgresError as exc:
        raise PlatformError(str(exc)) from None
    dbname = platform_settings.local_postgres().dbname
    cluster.ensure_database(dbname)
    _say(f"PostgreSQL: private cluster {cluster.data_dir} on 127.0.0.1:{cluster.port}")
    return {
        "managed": True,
        "data_dir": str(cluster.data_dir),
        "port": cluster.port,
        "env": _pg_env(cluster.host, cluster.port, cluster.user, cluster.password, dbname),
    }


def pg_env() -> dict[str, str]:
    """POSTGRES_* of the running platform, password included (it is not in the state file)."""
    state = read_state()
    env = {k: v for k, v in state.get("env", {}).items() if k.startswith("POSTGRES_")}
    if state.get("postgres", {}).get("managed"):
        env["POSTGRES_PASSWORD"] = local_postgres().password
    else:
        env["POSTGRES_PASSWORD"] = settings.postgres_settings().password
    return env


def running_private_postgres() -> dict[str, str] | None:
    """pg_env() of a running local platform's private cluster, or None.

    For commands run beside the platform without POSTGRES_* (`dataplatform check`): they should
    look at the platform's database, not at whatever answers on 127.0.0.1:5432.
    """
    if platform_settings.local_postgres().external_host:
        return None
    pg = read_state().get("postgres", {})
    if not pg.get("managed") or not (Path(pg["data_dir"]) / "postmaster.pid").exists():
        return None
    return pg_env()


def _pg_env(host, port, user, password, dbname) -> dict[str, str]:
    return {
        "POSTGRES_HOST": str(host),
        "POSTGRES_PORT": str(port),
        "POSTGRES_USER": str(user),
        "POSTGRES_PASSWORD": str(password or ""),
        "POSTGRES_DB": str(dbname),
    }


def prepare_dagster_home() -> Path:
    """DAGSTER_HOME with a fresh copy of platform/dagster.yaml (so edits apply on restart)."""
    home = paths.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(paths.repo_platform_dir() / "dagster.yaml", home / "dagster.yaml")
    return home


def prepare_workspace() -> tuple[Path, list[str]]:
    """The local workspace file, and the names of the locations it lists."""
    source = code_locations_path()
    # Same entries as the committed workspace: modules are not checked here (that depends on
    # this process's import path); dagster-init checks them and reports the ones it skips.
    locations, _ = read_code_locations(source, check_modules=False)
    active = [loc for loc in locations if loc.enabled]
    ws = workspace_config(load_document(source))
    target = write_local_workspace(paths.local_workspace_file(), active, ws, _source_label(source))
    return target, [loc.name for loc in active]


def ensure_instance_storage(env: dict[str, str]) -> None:
    """Create Dagster's tables once, before the processes that use them start together.

    On an empty database every process (code servers, webserver, daemon) would otherwise try to
    create the same tables at the same moment, and the losers fail with "already exists".
    """

    conn = pg.connect(pg.params_from_env(env))
    try:
        with conn.cursor() as cur:
            cur.execute("select to_regclass('public.instance_info') is not null")
            exists = cur.fetchone()[0]
    finally:
        conn.close()
    if exists:
        return
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PlatformError(
            f"creating Dagster's tables failed (dagster instance migrate):\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    _say("Dagster storage: tables created in PostgreSQL")


def prepare_dbt_manifest() -> None:
    """Parse dbt once here, so the code servers that start next find target/manifest.json."""
    from dataplatform.dbt.manifest import DbtManifestError, ensure_manifest

    try:
        ensure_manifest()
    except DbtManifestError as exc:
        raise PlatformError(str(exc)) from None


def platform_env(pg_env: dict[str, str]) -> dict[str, str]:
    env = os.environ.copy()
    env.update(pg_env)
    env["DAGSTER_HOME"] = str(paths.dagster_home())
    env.setdefault("DAGSTER_GRPC_BIND_HOST", "127.0.0.1")
    env["CODE_LOCATIONS_FILE"] = str(code_locations_path())
    env["DATAPLATFORM_PLATFORM_DIR"] = str(paths.platform_dir())
    env.setdefault("DO_NOT_TRACK", "1")
    # The venv's bin first, so dbt and uv resolve to the locked versions.
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    return env


def start_component(component: str, cmd: list[str], env: dict[str, str]) -> int:
    """Start `component` unless it runs; the daemon and webserver under a watchdog."""
    log = paths.log_dir() / f"{component}.log"
    if component not in SUPERVISED:
        pid = live_pid(component)
        if pid:
            _say(f"{component}: already running (pid {pid})")
            return pid
        proc = processes.spawn(cmd, log, env=env, cwd=settings.app_root())
        processes.write_pid_file(pid_file(component), proc.pid)
        _say(f"{component}: started (pid {proc.pid}), log {log}")
        return proc.pid
    watchdog = f"{component}-watchdog"
    pid = live_pid(watchdog)
    if pid:
        _say(
            f"{component}: already running (pid {live_pid(component)}) under a watchdog (pid {pid})"
        )
        return pid
    orphan = live_pid(component)
    if orphan:  # its watchdog died: replace it by a supervised one
        _say(f"{component}: pid {orphan} runs without its watchdog; restarting it supervised")
        processes.terminate(orphan, timeout=20)
    watchdog_status_file(component).unlink(missing_ok=True)  # a new watchdog writes its own
    proc = processes.spawn(
        [sys.executable, "-m", "dataplatform.local.watchdog", component, "--", *cmd],
        log,
        env=env,
        cwd=settings.app_root(),
    )
    processes.write_pid_file(pid_file(watchdog), proc.pid)
    _say(f"{component}: started under a watchdog (pid {proc.pid}), log {log}")
    return proc.pid


def _webserver_start_failure() -> str:
    """Why the webserver exited during start-up (its watchdog restarts it), or ''."""
    if not live_pid("dagster-webserver-watchdog"):
        return "its watchdog is not running"
    if live_pid("dagster-webserver"):
        return ""
    return watchdog_status("dagster-webserver").get("last_exit", "")


def supervisor_status() -> dict:
    try:
        return json.loads(paths.supervisor_status_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def wait_for_supervisor(pid: int, timeout: float) -> dict:
    """Wait until dagster-init finished its first round (each location up or reported)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = supervisor_status()
        if status.get("supervisor_pid") == pid and status.get("initial_round_complete"):
            return status
        if not processes.read_live_pid(pid_file("dagster-init")):
            raise PlatformError(
                f"dagster-init exited during start-up; see {paths.log_dir() / 'dagster-init.log'}"
            )
        time.sleep(0.3)
    return supervisor_status()


def _not_loaded_reason(name: str, loc, sup_info: dict, source: str) -> str:
    """Why a location did not load, in the supervisor's words when it knows better.

    The webserver only sees that it cannot reach the server (DagsterUserCodeUnreachableError
    ... UNAVAILABLE); dagster-init knows the port is taken, and by which process.
    """
    state, message = sup_info.get("state", "?"), sup_info.get("message", "")
    if state == "port_in_use":
        return f'{message}; fix: free the port, or change its "port" in {source}'
    if state not in ("ready", "load_error") and message:
        return f"{message}; see {paths.log_dir() / f'code-server-{name}.log'}"
    return (loc.error if loc else "") or message or "not loaded"


def start(timeout: float = 240.0) -> dict:
    """Start whatever is not running yet; returns the platform state (also in platform.json)."""
    t0 = time.monotonic()
    for d in (paths.run_dir(), paths.log_dir()):
        d.mkdir(parents=True, exist_ok=True)
    web = webserver_address()
    try:
        workspace, names = prepare_workspace()
    except CodeLocationsError as exc:
        raise PlatformError(f"cannot read code locations:\n{exc}") from None
    ours = live_pid("dagster-webserver-watchdog") or live_pid("dagster-webserver")
    if not ours and not processes.port_is_free(web.host, web.port):
        holder = processes.port_holder(web.port)
        raise PlatformError(
            f"webserver port {web.port} is taken{' by ' + holder if holder else ''}; "
            "stop that process or set DAGSTER_WEBSERVER_PORT"
        )
    pg = ensure_postgres()
    prepare_dagster_home()
    prepare_dbt_manifest()
    env = platform_env(pg["env"])
    ensure_instance_storage(env)
    state = {
        "postgres": {k: v for k, v in pg.items() if k != "env"},
        # No password in the state file: readers get it from pg_env().
        "env": {
            **{k: v for k, v in pg["env"].items() if k != "POSTGRES_PASSWORD"},
            "DAGSTER_HOME": env["DAGSTER_HOME"],
        },
        "webserver": {"host": web.host, "port": web.port, "url": web.url},
        "workspace": str(workspace),
        "code_locations_file": env["CODE_LOCATIONS_FILE"],
        "locations": names,
    }
    _write_state(state)

    py = sys.executable
    init_pid = start_component("dagster-init", [py, "-m", "dataplatform.cli", "dagster-init"], env)
    # Through dataplatform.runtime.dagster_webserver: the stock command, with the platform's
    # code-server watch interval (runtime/grpc_watch.py).
    start_component(
        "dagster-webserver",
        [
            py, "-m", "dataplatform.runtime.dagster_webserver",
            "-h", web.host,
            "-p", str(web.port),
            "-w", str(workspace),
        ],
        env,
    )  # fmt: skip
    # The daemon starts once the code servers answer, so its first runs find their location.
    # It runs through dataplatform.runtime.dagster_daemon, which re-reads the workspace as soon
    # as the file changes (a live `connector add`), not only every 60 s as Dagster's does.
    sup = wait_for_supervisor(init_pid, timeout)
    daemon = [py, "-m", "dataplatform.runtime.dagster_daemon", "run", "-w", str(workspace)]
    start_component("dagster-daemon", daemon, env)

    client = DagsterGraphQL(web.url)
    deadline = time.monotonic() + timeout
    while not client.is_up():
        failure = _webserver_start_failure()
        if time.monotonic() > deadline or failure:
            raise PlatformError(
                f"the webserver did not come up at {web.url}"
                f"{' (' + failure + ')' if failure else ''}; see "
                f"{paths.log_dir() / 'dagster-webserver.log'}"
            )
        time.sleep(0.3)
    serving = [
        name
        for name, info in sup.get("locations", {}).items()
        if info.get("state") == "ready" and name in names
    ]
    status = client.wait_for_locations(serving, timeout=max(5.0, deadline - time.monotonic()))
    report = []
    sup = supervisor_status() or sup  # the latest view, not the one from the first round
    for name in names:
        loc = status.get(name)
        sup_info = sup.get("locations", {}).get(name, {})
        if loc is not None and loc.loaded:
            report.append(f"  {name}: loaded ({len(loc.jobs)} job(s))")
        else:
            why = _not_loaded_reason(name, loc, sup_info, env["CODE_LOCATIONS_FILE"])
            report.append(f"  {name}: NOT loaded ({sup_info.get('state', '?')}): {why}")
    for finding in sup.get("invalid_entries", []):
        report.append(f"  invalid entry, not started: {finding}")
    _say(f"code locations ({len(names)} enabled):\n" + "\n".join(report))
    state["loaded"] = sorted(n for n, s in status.items() if s.loaded)
    state["started_in_seconds"] = round(time.monotonic() - t0, 2)
    _write_state(state)
    _say(f"Dagster UI: {web.url}   (logs: {paths.log_dir()})")
    return state


def stop(timeout: float = 30.0) -> list[str]:
    """Stop every process we started (by PID), then our PostgreSQL. Data stays on disk."""
    stopped = []
    run = paths.run_dir()
    ordered = [pid_file(c) for c in COMPONENTS]
    # Leftover code servers (e.g. dagster-init was SIGKILLed) and anything else we started.
    extra = sorted(p for p in run.glob("*.pid") if p not in ordered) if run.exists() else []
    for path in ordered + extra:
        pid = processes.read_live_pid(path)
        # A watchdog stops its child (and removes its pid file) before it exits.
        child = path.stem.removesuffix("-watchdog") if path.stem.endswith("-watchdog") else None
        child_pid = live_pid(child) if child else None
        if pid and processes.terminate(pid, timeout=timeout):
            stopped.append(f"{path.stem} (pid {pid})")
            if child_pid and not processes.read_live_pid(pid_file(child)):
                stopped.append(f"{child} (pid {child_pid})")
        path.unlink(missing_ok=True)
    state = read_state()
    if state.get("postgres", {}).get("managed"):
        cluster = LocalPostgres(Path(state["postgres"]["data_dir"]), int(state["postgres"]["port"]))
        if cluster.is_running():
            cluster.stop()
            stopped.append(f"postgres ({cluster.data_dir})")
    for line in stopped:
        _say(f"stopped {line}")
    if not stopped:
        _say("nothing was running")
    return stopped


def status() -> dict:
    out = {c: live_pid(c) for c in COMPONENTS}
    out["restarts"] = {c: watchdog_status(c).get("restarts", 0) for c in SUPERVISED if out[c]}
    out["code_servers"] = supervisor_status().get("locations", {}) if out["dagster-init"] else {}
    return out
