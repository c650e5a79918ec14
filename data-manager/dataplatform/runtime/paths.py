"""Where the running platform keeps its files (all under the gitignored project directory).

<project_dir>/platform/            ($DATAPLATFORM_PLATFORM_DIR overrides, e.g. for tests)
    run/      pid files and dagster-init's status.json
    logs/     one log per process: dagster-init, code-server-<name>, webserver, daemon, ...
    dagster_home/   DAGSTER_HOME: dagster.yaml copied from platform/dagster.yaml
    workspace.yaml  the local-mode workspace (hosts 127.0.0.1)

Container mode adds a volume shared by the data-manager, webserver and daemon containers
(DATAPLATFORM_SHARED_WORKSPACE's directory):
    workspace.yaml                  what the webserver and daemon read (hosts data-manager, ...)
    dagster-daemon/                 the daemon's platform dir, so data-manager can read its report
"""

from __future__ import annotations

from pathlib import Path

from dataplatform import settings as platform_settings
from pyairbyte import settings


def platform_dir() -> Path:
    return platform_settings.paths().resolved_platform_dir()


def run_dir() -> Path:
    return platform_dir() / "run"


def log_dir() -> Path:
    return platform_dir() / "logs"


def dagster_home() -> Path:
    return platform_dir() / "dagster_home"


def local_workspace_file() -> Path:
    return platform_dir() / "workspace.yaml"


def supervisor_status_file() -> Path:
    return run_dir() / "dagster-init.status.json"


def repo_platform_dir() -> Path:
    """The committed platform/ directory (dagster.yaml, container workspace.yaml, scripts)."""
    return settings.app_root() / "platform"


def shared_daemon_dir(shared_workspace: Path) -> Path:
    """The daemon container's DATAPLATFORM_PLATFORM_DIR, beside the shared workspace.

    There the daemon writes which workspace it loaded (runtime/dagster_daemon.py), and
    `connector add` in the data-manager container reads it to know when the daemon has the change.
    """
    return shared_workspace.parent / "dagster-daemon"
