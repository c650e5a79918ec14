"""Connector YAML files: load, validate and interpolate `data-manager/external-connectors/*.yaml`.

The guide's shape (`version`, `name`, `connector_type`, `image`, `config`) plus:
- `source_manifest`: a declarative (low-code) manifest, as a path relative to the YAML file or
  as an inline mapping. Declarative sources run in-process, with no connector venv.
- `pip_url` or `connector_version`: pin the PyPI package of a Python connector. PyAirbyte's own
  `version=` needs the online registry, so a version becomes `pip_url=airbyte-<name>==<version>`.
- `streams`: the streams to sync when the caller does not choose.
- `python`: the interpreter of a Python connector's venv, a version (`"3.10"`, resolved to one
  installed on the machine, never downloaded) or a path; see `interpreters.py`. For connectors
  whose pinned airbyte-cdk 0.x cannot import on the platform's Python.
- `schedule`, `freshness`, `retry`: the connector's automation (connector_automation.py), a
  schedule of its pipeline job, freshness checks and dbt source freshness, a retry policy on
  its sync for transient source errors.
- `schema_change`, `bad_data`: the data policy (data_policy.py), what the cache does with a
  changed schema and with records or values it cannot store as sent. Both optional.
- `${VAR}` / `${VAR:-default}` in `config` and `pip_url` values, so secrets never sit in the
  file; `$${` is a literal `${`. A value that is exactly one `${...}` and expands to a plain
  integer or true/false becomes that type (connector specs want `count: 1000`, not "1000").

Every problem raises `ConnectorConfigError` naming the file, the field and the fix. Files are
read through `safe_yaml` (UTF-8 only, size and alias limits). A manifest's path must stay inside
the connector YAML's directory (it is copied and served with it).

Secrets: keys that look like secrets (`api_key`, `password`, `token`, ...; `is_secret_key`), the
manifest spec's `airbyte_secret` properties, and values of `${VAR}`s whose name looks like a secret
are the connector's secrets. No error here quotes them; `ConnectorConfig.masked_config()` and
`redact()` are how callers print or log config and messages that may contain them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyairbyte.errors import ConnectorConfigError, YamlFileError
from pyairbyte.utils.connector_automation import AUTOMATION_KEYS, Automation, parse_automation
from pyairbyte.utils.connector_files import find_connector_file, read_connector_yaml
from pyairbyte.utils.data_policy import DATA_POLICY_KEYS, DataPolicy, parse_data_policy
from pyairbyte.utils.safe_yaml import load_yaml_file

__all__ = [
    "ConnectorConfig",
    "ConnectorConfigError",
    "get_connector_by_name",
    "is_secret_key",
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
    "python",
    *AUTOMATION_KEYS,
    *DATA_POLICY_KEYS,
)
ALLOWED_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_VAR_PATTERN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VAR_BODY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
_PLAIN_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")

MASK = "********"
# Config keys (and ${VAR} names) that hold secrets whatever the source's spec says.
SECRET_KEY_NAMES = frozenset(
    {"api_key", "apikey", "password", "passwd", "token", "secret", "client_secret"}
    | {"access_token", "refresh_token", "private_key", "credentials_json"}
)
_SECRET_PARTS = ("password", "secret", "token", "api_key", "apikey", "private_key", "access_key")
# Shorter values are not masked inside text: masking "1" would garble every message.
_MIN_MASKED_LENGTH = 4
# Top-level keys of a declarative manifest that a connector YAML never has.
_MANIFEST_KEYS = frozenset({"check", "spec", "definitions", "schemas", "metadata"})


def is_secret_key(key: object) -> bool:
    """`api_key`, `client_secret`, `ORDERS_API_KEY`, `db-password`: a secret by its name."""
    normalised = str(key).lower().replace("-", "_")
    return normalised in SECRET_KEY_NAMES or any(part in normalised for part in _SECRET_PARTS)


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
    # The YAML's `python:` as written (a version or a path); `interpreters.resolve_python`
    # finds the interpreter when the connector is built, not when code servers load YAMLs.
    python: str | None = None
    env_vars: tuple[str, ...] = field(default=())
    automation: Automation = field(default=Automation())
    # `schema_change:` and `bad_data:`; the defaults when the YAML leaves them out.
    data_policy: DataPolicy = field(default_factory=DataPolicy)
    # Property names the manifest's spec marks `airbyte_secret` (declarative sources).
    secret_keys: frozenset[str] = field(default=frozenset())
    # Values of the secrets in `config` (and of secret-named ${VAR}s): never shown by repr().
    secret_values: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def is_declarative(self) -> bool:
        return self.source_manifest is not None

    def __repr__(self) -> str:
        # The dataclass repr would print config, secrets included.
        return (
            f"ConnectorConfig(name={self.name!r}, path={str(self.path)!r}, "
            f"config={self.masked_config()!r})"
        )

    def is_secret(self, key: object) -> bool:
        return is_secret_key(key) or str(key) in self.secret_keys

    def masked_config(self) -> dict[str, Any]:
        """`config` with every secret value replaced by ********: what may be printed or logged."""
        return _mask(self.config, self.is_secret)

    def redact(self, text: str) -> str:
        """`text` with every secret value of this connector replaced by ********."""
        for value in sorted(self.secret_values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


def _mask(value: Any, is_secret, secret: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, is_secret, secret or is_secret(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, is_secret, secret) for v in value]
    return MASK if secret and value not in (None, "") else value


def _secret_leaves(value: Any, is_secret, secret: bool = False) -> list[str]:
    if isinstance(value, dict):
        return [
            leaf
            for k, v in value.items()
            for leaf in _secret_leaves(v, is_secret, secret or is_secret(k))
        ]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _secret_leaves(v, is_secret, secret)]
    text = "" if value is None or isinstance(value, bool) else str(value)
    return [text] if secret and len(text) >= _MIN_MASKED_LENGTH else []


def spec_secret_keys(manifest: dict | None) -> frozenset[str]:
    """Property names marked `airbyte_secret: true` anywhere in a manifest's spec."""
    spec = manifest.get("spec") if isinstance(manifest, dict) else None
    found: set[str] = set()
    stack = [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                found.update(
                    str(k)
                    for k, v in props.items()
                    if isinstance(v, dict) and v.get("airbyte_secret")
                )
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(found)


def _interpolate_string(
    value: str, path: Path, field_name: str, used: set[str], secrets: set[str]
) -> Any:
    whole_value = False

    def replace(match: re.Match) -> str:
        if match.group(0) == "$${":
            return "${"
        body = _VAR_BODY.match(match.group(1))
        if body is None:
            # The value of a secret field is not quoted, not even its broken reference.
            shown = (
                "a '${...}'"
                if is_secret_key(field_name.rsplit(".", 1)[-1])
                else (f"'{match.group(0)}'")
            )
            raise ConnectorConfigError(
                path,
                field_name,
                f"{shown} is not a valid variable reference",
                "write ${NAME} or ${NAME:-default}, with NAME made of letters, digits and _",
            )
        name, default = body.group(1), body.group(2)
        used.add(name)
        # The YAML names the variable, so there is no typed setting for it: read env directly.
        env_value = os.environ.get(name)
        if env_value is not None:
            if is_secret_key(name) and len(env_value) >= _MIN_MASKED_LENGTH:
                secrets.add(env_value)
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


def _interpolate(value: Any, path: Path, field_name: str, used: set[str], secrets: set[str]) -> Any:
    if isinstance(value, str):
        return _interpolate_string(value, path, field_name, used, secrets)
    if isinstance(value, dict):
        return {
            k: _interpolate(v, path, f"{field_name}.{k}", used, secrets) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(v, path, f"{field_name}[{i}]", used, secrets) for i, v in enumerate(value)
        ]
    return value


def _looks_like_manifest(data: dict) -> bool:
    """A declarative manifest, not a connector YAML: it has `check`/`spec`/`definitions` or
    stream definitions (mappings), and no `connector_type` or `config`."""
    if "connector_type" in data or "config" in data:
        return False
    streams = data.get("streams")
    stream_definitions = isinstance(streams, list) and any(isinstance(s, dict) for s in streams)
    return (
        data.get("type") == "DeclarativeSource"
        or bool(_MANIFEST_KEYS & {str(k) for k in data})
        or stream_definitions
    )


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
    try:
        manifest_path = (path.parent / raw).resolve()
    except (OSError, RuntimeError, ValueError):  # a NUL byte, a symlink loop
        manifest_path = None
    if manifest_path is None or not manifest_path.is_relative_to(path.parent.resolve()):
        raise ConnectorConfigError(
            path,
            "source_manifest",
            f"the manifest path {raw!r} is outside the connector YAML's directory "
            f"{path.parent}; a manifest is read, copied and served from beside its YAML only",
            "move the manifest under manifests/ next to the YAML and write e.g. "
            "`source_manifest: manifests/<name>.yaml`, or inline it",
        )
    if not manifest_path.is_file():
        raise ConnectorConfigError(
            path,
            "source_manifest",
            f"manifest file {manifest_path} does not exist",
            "create the manifest, or correct the path (it is relative to the connector YAML)",
        )
    try:
        manifest = load_yaml_file(manifest_path)
    except YamlFileError as exc:
        raise ConnectorConfigError(
            path, "source_manifest", f"{manifest_path} {exc.problem}", exc.fix
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
    data = read_connector_yaml(path)
    if not isinstance(data, dict):
        raise ConnectorConfigError(
            path, "(file)", "the top level is not a mapping", "start the file with `version: 1`"
        )
    if _looks_like_manifest(data):
        raise ConnectorConfigError(
            path,
            "(file)",
            "this is a declarative (low-code) manifest, not a connector YAML; every YAML directly "
            f"in {path.parent.name}/ must be a connector YAML",
            f"move it to manifests/{path.name} and point a connector YAML at it with "
            f"`source_manifest: manifests/{path.name}`",
        )
    unknown = sorted((k for k in data if k not in ALLOWED_KEYS), key=str)
    if unknown:
        raise ConnectorConfigError(
            path,
            _short(unknown[0], quote=not (isinstance(unknown[0], str) and unknown[0].strip())),
            f"unknown key {_short(unknown[0])}",
            f"remove it or use one of: {', '.join(ALLOWED_KEYS)}",
        )
    for key in REQUIRED_KEYS:
        if key not in data or data[key] is None:
            raise ConnectorConfigError(
                path, key, "missing required field", f"add `{key}:` ({_HINTS[key]})"
            )
    if isinstance(data["version"], bool) or data["version"] != 1:
        raise ConnectorConfigError(
            path, "version", f"unsupported version {_short(data['version'])}", "set `version: 1`"
        )
    name = data["name"]
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConnectorConfigError(
            path,
            "name",
            f"invalid name {_short(name)}",
            "use lowercase letters, digits, '-' and '_', e.g. `name: source-my-api`",
        )
    if data["connector_type"] != "source":
        raise ConnectorConfigError(
            path,
            "connector_type",
            f"unsupported connector_type {_short(data['connector_type'])}",
            "set `connector_type: source` (only sources are synced)",
        )
    if not isinstance(data["config"], dict):
        raise ConnectorConfigError(
            path, "config", "expected a mapping", "write the connector settings as `key: value`"
        )
    for key in ("image", "description", "pip_url"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ConnectorConfigError(
                path,
                key,
                f"expected text, got {type(data[key]).__name__}",
                f"write `{key}:` as a string (quote it)",
            )
    version = data.get("connector_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, str | int)):
        raise ConnectorConfigError(
            path,
            "connector_version",
            f"expected a version such as '7.1.1', got {type(version).__name__}",
            "write the version as a quoted string, e.g. `connector_version: '7.1.1'`",
        )
    streams = data.get("streams")
    if streams is not None and (
        not isinstance(streams, list) or not all(isinstance(s, str) and s for s in streams)
    ):
        raise ConnectorConfigError(
            path, "streams", "expected a list of stream names", "write e.g. `streams: [users]`"
        )
    python = _python_field(data.get("python"), path)
    if python is not None and data.get("source_manifest") is not None:
        raise ConnectorConfigError(
            path,
            "python",
            "a declarative manifest runs in-process, on the platform's Python, with no venv",
            "remove `python:` (it is for connectors installed from PyPI)",
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

    automation = parse_automation(data, path)
    data_policy = parse_data_policy(data, path)
    manifest = manifest_path = None
    if data.get("source_manifest") is not None:
        manifest, manifest_path = _load_manifest(data["source_manifest"], path)

    # Env variables last: a structural mistake is reported before a missing variable.
    used_vars: set[str] = set()
    secret_env: set[str] = set()
    config = _interpolate(data["config"], path, "config", used_vars, secret_env)
    pip_url = data.get("pip_url")
    if pip_url is not None:
        pip_url = _interpolate(str(pip_url), path, "pip_url", used_vars, secret_env)
    elif data.get("connector_version"):
        pip_url = f"airbyte-{name}=={data['connector_version']}"

    secret_keys = spec_secret_keys(manifest)

    def is_secret(key: object) -> bool:
        return is_secret_key(key) or str(key) in secret_keys

    secrets = secret_env | set(_secret_leaves(config, is_secret))
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
        python=python,
        env_vars=tuple(sorted(used_vars)),
        automation=automation,
        data_policy=data_policy,
        secret_keys=secret_keys,
        secret_values=tuple(sorted(secrets)),
    )


def _python_field(value: Any, path: Path) -> str | None:
    """`python:` as text: a version such as "3.10" or a path. A YAML number is refused, because
    YAML reads `3.10` as 3.1."""
    from pyairbyte.utils.interpreters import VERSION_PATTERN

    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ConnectorConfigError(
            path,
            "python",
            f"{value!r} is a number (YAML reads 3.10 as 3.1)",
            'quote the version: `python: "3.10"`',
        )
    if not isinstance(value, str) or not value.strip():
        raise ConnectorConfigError(
            path,
            "python",
            f"expected a version or a path, got {_short(value)}",
            'write e.g. `python: "3.10"` or `python: /usr/bin/python3.10`',
        )
    value = value.strip()
    if not VERSION_PATTERN.match(value) and "/" not in value and not value.startswith("~"):
        raise ConnectorConfigError(
            path,
            "python",
            f'{_short(value)} is neither a version such as "3.10" nor a path',
            'write e.g. `python: "3.10"`, `python: "3.10.13"` or `python: /usr/bin/python3.10`',
        )
    return value


def _short(value: Any, quote: bool = True) -> str:
    """A value for a message: repr'd (or str'd) and cut at 60 characters."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


_HINTS = {
    "version": "always 1",
    "name": "the connector name, e.g. source-faker",
    "connector_type": "`source`",
    "config": "the connector's settings; may be `{}`",
}


def get_connector_by_name(connector_name: str, directory: Path | None = None) -> ConnectorConfig:
    return load_connector_file(find_connector_file(connector_name, directory))
