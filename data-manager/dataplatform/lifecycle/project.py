"""Where the lifecycle commands read and write, and the code-locations.json edits they make.

Paths come from pyairbyte.settings (APP_ROOT, CONNECTORS_DIR), dataplatform.dbt.settings
(DBT_PROJECT_DIR) and the platform's `code_locations_path()` (CODE_LOCATIONS_FILE), so a test can
point every command at a copy of the repository. The derived files (workspace.yaml, compose
ports, Dockerfile EXPOSE) are rendered by the platform's own `dataplatform.runtime.derived_configs`,
from the code-locations document as it will be after the change, and written in the same file
transaction as everything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dataplatform.dbt import settings as dbt_settings
from dataplatform.lifecycle.errors import LifecycleError
from dataplatform.runtime import derived_configs
from dataplatform.runtime.code_locations import (
    PORT_MAX,
    PORT_MIN,
    CodeLocationsError,
    code_locations_path,
    load_document,
    validate_document,
    workspace_config,
)
from pyairbyte import settings


@dataclass(frozen=True)
class Project:
    root: Path
    dagster_code: Path
    connectors_dir: Path
    dbt_dir: Path
    code_locations: Path

    @classmethod
    def from_settings(cls) -> Project:
        root = settings.app_root()
        return cls(
            root=root,
            dagster_code=root / "dagster_code",
            connectors_dir=settings.connectors_dir(),
            dbt_dir=dbt_settings.project_dir(),
            code_locations=code_locations_path(),
        )

    @property
    def models_dir(self) -> Path:
        return self.dbt_dir / "models"

    def derived_files(self) -> derived_configs.DerivedFiles:
        return derived_configs.committed_files(self.root)

    def relative(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)


def read_document(project: Project) -> dict:
    try:
        return load_document(project.code_locations)
    except CodeLocationsError as exc:
        raise LifecycleError(
            str(exc), "repair code-locations.json (see `dataplatform check`)"
        ) from None


def render_document(doc: dict) -> str:
    """The file's format: two-space JSON and a final newline (add + remove round-trips)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def entries_by_name(doc: dict) -> dict[str, dict]:
    return {e["name"]: e for e in doc["code_locations"] if isinstance(e, dict) and "name" in e}


def used_ports(doc: dict) -> dict[int, str]:
    """Port -> location name, disabled entries included (their ports stay reserved)."""
    return {
        e["port"]: str(e.get("name"))
        for e in doc["code_locations"]
        if isinstance(e, dict) and isinstance(e.get("port"), int)
    }


def choose_port(doc: dict, requested: int | None, path: Path) -> int:
    taken = used_ports(doc)
    free = _next_free(taken)
    if free is None:
        raise _range_full(doc, requested, path)
    if requested is not None:
        if not PORT_MIN <= requested <= PORT_MAX:
            raise LifecycleError(
                f"--port {requested} is outside the code-location range {PORT_MIN}-{PORT_MAX}",
                f"choose a free port in {PORT_MIN}-{PORT_MAX}, or leave out --port to take the "
                f"next free one ({free})",
            )
        if requested in taken:
            raise LifecycleError(
                f"--port {requested} is already used by code location {taken[requested]!r} "
                f"in {path}",
                f"leave out --port to take the next free one ({free})",
            )
        return requested
    return free


def _range_full(doc: dict, requested: int | None, path: Path) -> LifecycleError:
    """Every port is taken: say so, and which locations could give theirs up."""
    size = PORT_MAX - PORT_MIN + 1
    asked = f"--port {requested}: " if requested is not None else ""
    disabled = sorted(
        str(e.get("name"))
        for e in doc["code_locations"]
        if isinstance(e, dict) and e.get("enabled") is False and isinstance(e.get("port"), int)
    )
    ways = [
        "remove a code location you no longer need: `dataplatform connector remove NAME`",
    ]
    if disabled:
        ways.insert(
            0,
            f"disabled locations still hold their ports ({', '.join(disabled)}): remove one",
        )
    return LifecycleError(
        f"{asked}no free code-location port: all {size} ports in {PORT_MIN}-{PORT_MAX} (the range "
        f"compose publishes and the image exposes) are used by the entries of {path}",
        "; ".join(ways) + ", then add the connector again",
    )


def _next_free(taken: dict[int, str]) -> int | None:
    return next((p for p in range(PORT_MIN, PORT_MAX + 1) if p not in taken), None)


def new_entry(
    location: str, port: int, description: str, connector_name: str, dbt_source: str
) -> dict:
    """An entry in the guide's shape; metadata.connector and metadata.dbt_source tell `remove`
    which connector YAML and which dbt source are the location's (location_connectors)."""
    return {
        "name": location,
        "enabled": True,
        "description": description,
        "module": f"dagster_code.{location}",
        "port": port,
        "host": "data-manager",
        "metadata": {
            "team": "data",
            "domain": location,
            "version": "1.0.0",
            "connector": connector_name,
            "dbt_source": dbt_source,
        },
    }


def derived_contents(project: Project, doc: dict) -> dict[Path, str]:
    """workspace.yaml, docker-compose.yaml and Dockerfile.data-manager as they must read for
    `doc` (the document after the change), rendered by the platform's derived_configs."""
    locations, findings = validate_document(doc, project.code_locations, check_modules=False)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise LifecycleError(
            "code-locations.json would be invalid:\n" + "\n".join(str(f) for f in errors),
            "repair the entries named above (see `dataplatform check`)",
        )
    try:
        return derived_configs.expected_contents(
            locations,
            workspace_config(doc),
            derived_configs.COMMITTED_SOURCE_LABEL,
            project.derived_files(),
        )
    except derived_configs.DerivedConfigError as exc:
        raise LifecycleError(str(exc), "restore the GENERATED marker comments") from None
