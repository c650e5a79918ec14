"""Connector YAML files: load, validate and interpolate `data-manager/external-connectors/*.yaml`.

The guide's shape (`version`, `name`, `connector_type`, `image`, `config`) plus:
- `source_manifest`: a declarative (low-code) manifest, as a path relative to the YAML file or
  as an inline mapping. Declarative sources run in-process, with no connector venv.
- `pip_url` or `connector_version`: pin the PyPI package of a Python connector. PyAirbyte's own
  `version=` needs the online registry, so a version becomes `pip_url=airbyte-<name>==<version>`.
- `streams`: the streams to sync when the caller does not choose.
- `${VAR}` / `${VAR:-default}` in `config` and `pip_url` values, so secrets never sit in the
  file; `$${` is a literal `${`. A value that is exactly one `${...}` and expands to a plain
  integer or true/false becomes that type (connector specs want `count: 1000`, not "1000").

Every problem raises `ConnectorConfigError` naming the file, the field and the fix.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pyairbyte import settings
from pyairbyte.errors import ConnectorConfigError

__all__ = [
    "ConnectorConfig",
    "ConnectorConfigError",
    "get_connector_by_name",
    "load_connector_file",
]

REQUIRED_KEYS = ("version", "name", "connector_type", "config")
OPTIONAL_KEYS = (
    "image",
    "description",
    "source_manifest",
    "pip_url",
    "connector_version",
    "streams",
)
ALLOWED_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_VAR_PATTERN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VAR_BODY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_PLAIN_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")


@dataclass(frozen=True)
class ConnectorConfig:
    name: str
    path: Path
    connector_type: str
    config: dict[str, Any]
    image: str | None = None
    description: str | None = None
    source_manifest: dict[str, Any] | None = None
    manifest_path: Path | None = None
    pip_url: str | None = None
    streams: list[str] | None = None
    env_vars: tuple[str, ...] = field(default=())

    @property
    def is_declarative(self) -> bool:
        return self.source_manifest is not None


def _interpolate_string(value: str, path: Path, field_name: str, used: set[str]) -> Any:
    whole_value = False

    def replace(match: re.Match) -> str:
        if match.group(0) == "$${":
            return "${"
        body = _VAR_BODY.match(match.group(1))
        if body is None:
            raise ConnectorConfigError(
                path,
                field_name,
                f"'{match.group(0)}' is not a valid variable reference",
                "write ${NAME} or ${NAME:-default}, with NAME made of letters, digits and _",
            )
        name, default = body.group(1), body.group(2)
        used.add(name)
        # The YAML names the variable, so there is no typed setting for it: read env directly.
        env_value = os.environ.get(name)
        if env_value is not None:
            return env_value
        if default is not None:
            return default
        raise ConnectorConfigError(
            path,
            field_name,
            f"environment variable {name} is not set and has no default",
            f"export {name}=<value>, or write ${{{name}:-<default>}} in the file",
        )

    single = _VAR_PATTERN.fullmatch(value)
    whole_value = single is not None and single.group(0) != "$${"
    result = _VAR_PATTERN.sub(replace, value)
    if whole_value:
        if _PLAIN_INT.match(result):
            return int(result)
        if result in ("true", "false"):
            return result == "true"
    return result


def _interpolate(value: Any, path: Path, field_name: str, used: set[str]) -> Any:
    if isinstance(value, str):
        return _interpolate_string(value, path, field_name, used)
    if isinstance(value, dict):
        return {k: _interpolate(v, path, f"{field_name}.{k}", used) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path, f"{field_name}[{i}]", used) for i, v in enumerate(value)]
    return value


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConnectorConfigError(
            path, "(file)", "the file does not exist", "check the path or the connector name"
        ) from None
    except yaml.YAMLError as exc:
        raise ConnectorConfigError(
            path, "(file)", f"not valid YAML ({exc})", "fix the YAML syntax at the line shown"
        ) from None


def _load_manifest(raw: Any, path: Path) -> tuple[dict, Path | None]:
    if isinstance(raw, dict):
        return raw, None
    if not isinstance(raw, str) or not raw.strip():
        raise ConnectorConfigError(
            path,
            "source_manifest",
            f"expected a file path or a mapping, got {type(raw).__name__}",
            "give a path relative to this YAML file, or the manifest itself as a mapping",
        )
    manifest_path = (path.parent / raw).resolve()
    if not manifest_path.is_file():
        raise ConnectorConfigError(
            path,
            "source_manifest",
            f"manifest file {manifest_path} does not exist",
            "create the manifest, or correct the path (it is relative to the connector YAML)",
        )
    try:
        manifest = yaml.safe_load(manifest_path.read_text())
    except yaml.YAMLError as exc:
        raise ConnectorConfigError(
            path, "source_manifest", f"{manifest_path} is not valid YAML ({exc})", "fix its syntax"
        ) from None
    if not isinstance(manifest, dict) or "streams" not in manifest:
        raise ConnectorConfigError(
            path,
            "source_manifest",
            f"{manifest_path} is not a declarative manifest (no top-level 'streams')",
            "point source_manifest at a declarative manifest with version, streams, check, spec",
        )
    return manifest, manifest_path


def load_connector_file(path: Path | str) -> ConnectorConfig:
    """Load and validate one connector YAML file."""
    path = Path(path).resolve()
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConnectorConfigError(
            path, "(file)", "the top level is not a mapping", "start the file with `version: 1`"
        )
    unknown = sorted(set(data) - set(ALLOWED_KEYS))
    if unknown:
        raise ConnectorConfigError(
            path,
            unknown[0],
            f"unknown key '{unknown[0]}'",
            f"remove it or use one of: {', '.join(ALLOWED_KEYS)}",
        )
    for key in REQUIRED_KEYS:
        if key not in data or data[key] is None:
            raise ConnectorConfigError(
                path, key, "missing required field", f"add `{key}:` ({_HINTS[key]})"
            )
    if data["version"] != 1:
        raise ConnectorConfigError(
            path, "version", f"unsupported version {data['version']!r}", "set `version: 1`"
        )
    name = data["name"]
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConnectorConfigError(
            path,
            "name",
            f"invalid name {name!r}",
            "use lowercase letters, digits, '-' and '_', e.g. `name: source-my-api`",
        )
    if data["connector_type"] != "source":
        raise ConnectorConfigError(
            path,
            "connector_type",
            f"unsupported connector_type {data['connector_type']!r}",
            "set `connector_type: source` (only sources are synced)",
        )
    if not isinstance(data["config"], dict):
        raise ConnectorConfigError(
            path, "config", "expected a mapping", "write the connector settings as `key: value`"
        )
    streams = data.get("streams")
    if streams is not None and (
        not isinstance(streams, list) or not all(isinstance(s, str) and s for s in streams)
    ):
        raise ConnectorConfigError(
            path, "streams", "expected a list of stream names", "write e.g. `streams: [users]`"
        )
    if data.get("pip_url") and data.get("connector_version"):
        raise ConnectorConfigError(
            path,
            "connector_version",
            "both pip_url and connector_version are set",
            "keep one: pip_url wins over a version, so drop connector_version",
        )
    if data.get("source_manifest") is not None and (
        data.get("pip_url") or data.get("connector_version")
    ):
        raise ConnectorConfigError(
            path,
            "source_manifest",
            "a declarative manifest cannot also have pip_url/connector_version",
            "remove pip_url/connector_version (declarative sources run in-process)",
        )

    manifest = manifest_path = None
    if data.get("source_manifest") is not None:
        manifest, manifest_path = _load_manifest(data["source_manifest"], path)

    # Env variables last: a structural mistake is reported before a missing variable.
    used_vars: set[str] = set()
    config = _interpolate(data["config"], path, "config", used_vars)
    pip_url = data.get("pip_url")
    if pip_url is not None:
        pip_url = _interpolate(str(pip_url), path, "pip_url", used_vars)
    elif data.get("connector_version"):
        pip_url = f"airbyte-{name}=={data['connector_version']}"

    return ConnectorConfig(
        name=name,
        path=path,
        connector_type=data["connector_type"],
        config=config,
        image=data.get("image"),
        description=data.get("description"),
        source_manifest=manifest,
        manifest_path=manifest_path,
        pip_url=pip_url,
        streams=list(streams) if streams else None,
        env_vars=tuple(sorted(used_vars)),
    )


_HINTS = {
    "version": "always 1",
    "name": "the connector name, e.g. source-faker",
    "connector_type": "`source`",
    "config": "the connector's settings; may be `{}`",
}


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
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            data = None
        declared = data.get("name") if isinstance(data, dict) else None
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


def get_connector_by_name(connector_name: str, directory: Path | None = None) -> ConnectorConfig:
    return load_connector_file(find_connector_file(connector_name, directory))
