"""Finding and reading the connector YAML files of `external-connectors/`, nothing more.

Both `connector_config` (which validates a whole file) and `connector_automation` (which reads
only the automation keys, on every code server start) need these, so they live below both and
the imports go one way: connector_config -> connector_automation -> connector_files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyairbyte import settings
from pyairbyte.errors import ConnectorConfigError, YamlFileError
from pyairbyte.utils.safe_yaml import load_yaml_file


def _normalise(name: str) -> str:
    return name.replace("-", "_").lower()


def connector_files(directory: Path | None = None) -> list[Path]:
    directory = directory or settings.connectors_dir()
    return sorted(p for p in directory.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def find_connector_file(connector_name: str, directory: Path | None = None) -> Path:
    """The YAML whose `name` (or file stem) matches; '-' and '_' are interchangeable."""
    directory = directory or settings.connectors_dir()
    wanted = _normalise(connector_name)
    for path in connector_files(directory):
        declared = declared_name(path)
        if isinstance(declared, str) and _normalise(declared) == wanted:
            return path
    for path in connector_files(directory):
        if _normalise(path.stem) == wanted:
            return path
    known = ", ".join(p.name for p in connector_files(directory)) or "none"
    raise ConnectorConfigError(
        directory / f"{connector_name}.yaml",
        "name",
        f"no connector YAML in {directory} has name {connector_name!r} (files: {known})",
        "create the YAML in external-connectors/ or correct the connector name",
    )


def declared_name(path: Path) -> str | None:
    """The `name:` a connector YAML declares, or None for a file that is not one.

    A broken file (not UTF-8, an alias bomb, bad YAML) is skipped here, so one bad file does
    not stop every other connector's sync; loading it by name, or `dataplatform check`, reports it.
    """
    try:
        data = load_yaml_file(path)
    except YamlFileError:
        return None
    declared = data.get("name") if isinstance(data, dict) else None
    return declared if isinstance(declared, str) else None


def read_connector_yaml(path: Path) -> Any:
    """The file's value through safe_yaml; its problems as ConnectorConfigError on '(file)'."""
    if not path.exists():
        raise ConnectorConfigError(
            path, "(file)", "the file does not exist", "check the path or the connector name"
        )
    try:
        return load_yaml_file(path)
    except YamlFileError as exc:
        raise ConnectorConfigError(path, "(file)", f"the file {exc.problem}", exc.fix) from None
