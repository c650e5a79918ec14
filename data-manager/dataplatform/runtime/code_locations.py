"""Load and validate code-locations.json, the one source of truth for code locations.

    locations, findings = read_code_locations()          # never raises for bad entries
    locations = load_code_locations()                     # raises CodeLocationsError on errors
    startable = [loc for loc in locations if loc.enabled]

Every finding names the file, the entry and the field, and says how to fix it. Validation never
imports a location's module (that would pull Dagster, dbt or airbyte into the caller); it only
asks the import system whether the module can be found.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from dataplatform import settings as platform_settings

PORT_MIN = 4266
PORT_MAX = 4299
DEFAULT_HOST = "data-manager"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_KNOWN_FIELDS = {"name", "enabled", "description", "module", "port", "host", "metadata"}


@dataclass(frozen=True)
class CodeLocation:
    name: str
    module: str
    port: int
    host: str = DEFAULT_HOST
    enabled: bool = True
    description: str = ""
    metadata: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Finding:
    """One problem: how bad it is, where, what is wrong, and how to fix it.

    The one finding type of the platform: this validator (which the supervisor uses) and the
    `dataplatform check` doctor both report with it. `where` is the file for a problem inside one
    file, narrowed by `entry` (e.g. `code_locations[1] ("airbyte_sync")`) and `field`; the doctor
    puts its area of checks there ("dbt", "imports") when the message names the files itself.
    """

    severity: str  # "error", "warning" or "note"
    where: str
    message: str
    entry: str = ""
    field: str = ""
    fix: str = ""
    location_name: str | None = None

    @property
    def place(self) -> str:
        """`entry, field 'x'`: the part of `where` the message is about (may be empty)."""
        field_part = f"field '{self.field}'" if self.field else ""
        return ", ".join(p for p in (self.entry, field_part) if p)

    def _what(self) -> str:
        return f"{self.place}: {self.message}" if self.place else self.message

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self._what()}"

    def render(self) -> str:
        """The doctor's form: severity, [where], message, then the fix on its own line."""
        text = f"{self.severity.upper():7} [{self.where}] {self._what()}"
        if self.fix:
            text += f"\n        fix: {self.fix}"
        return text


class CodeLocationsError(ValueError):
    def __init__(self, findings: list[Finding]):
        self.findings = findings
        super().__init__("\n".join(str(f) for f in findings))


@dataclass(frozen=True)
class WorkspaceConfig:
    workspace_name: str = "dagster-workspace"
    description: str = ""
    version: str = ""


def code_locations_path() -> Path:
    """$CODE_LOCATIONS_FILE (tests, alternative deployments) or the repository's file."""
    return platform_settings.paths().resolved_code_locations_file()


def _entry_label(index: int, raw: object) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return (
        f'code_locations[{index}] ("{name}")'
        if isinstance(name, str)
        else f"code_locations[{index}]"
    )


def load_document(path: Path) -> dict:
    """The parsed JSON; CodeLocationsError (one finding) if missing or malformed."""
    path = Path(path)

    def file_error(message: str) -> CodeLocationsError:
        return CodeLocationsError([Finding("error", str(path), message, entry="file")])

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise file_error("not found; create it or point CODE_LOCATIONS_FILE at it") from None
    except OSError as exc:
        raise file_error(f"cannot be read ({exc.strerror}); check the path") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise file_error(
            f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} cannot be decoded; "
            "save the file as UTF-8"
        ) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise file_error(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:
        # An integer of more than 4300 digits; nesting deeper than the interpreter's stack.
        raise file_error(f"JSON this validator cannot read ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("code_locations"), list):
        raise CodeLocationsError(
            [
                Finding(
                    "error",
                    str(path),
                    'the top level must be an object with a "code_locations" list',
                    entry="file",
                    field="code_locations",
                )
            ]
        )
    return doc


def workspace_config(doc: dict) -> WorkspaceConfig:
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    return WorkspaceConfig(
        workspace_name=str(config.get("workspace_name", WorkspaceConfig.workspace_name)),
        description=str(config.get("description", "")),
        version=str(config.get("version", "")),
    )


def _parse_entry(path: Path, index: int, raw: object) -> tuple[CodeLocation | None, list[Finding]]:
    label = _entry_label(index, raw)
    if not isinstance(raw, dict):
        return None, [Finding("error", str(path), "each entry must be a JSON object", entry=label)]
    name = raw.get("name")
    loc_name = name if isinstance(name, str) else None

    def err(fld: str, msg: str, severity: str = "error") -> Finding:
        return Finding(severity, str(path), msg, entry=label, field=fld, location_name=loc_name)

    findings: list[Finding] = []
    if not isinstance(name, str) or not _NAME_RE.match(name):
        findings.append(
            err("name", f"{name!r} is not a valid name; use letters, digits and underscores")
        )
    module = raw.get("module")
    if not isinstance(module, str) or not _MODULE_RE.match(module):
        findings.append(
            err("module", f"{module!r} is not a dotted module path, e.g. dagster_code.my_location")
        )
    port = raw.get("port")
    if isinstance(port, bool) or not isinstance(port, int):
        findings.append(err("port", f"{port!r} is not an integer port number"))
    elif not PORT_MIN <= port <= PORT_MAX:
        findings.append(
            err(
                "port",
                f"{port} is outside the code-location range {PORT_MIN}-{PORT_MAX}; "
                "use the next free port in that range",
            )
        )
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        findings.append(err("enabled", f"{enabled!r} must be true or false"))
    host = raw.get("host", DEFAULT_HOST)
    if not isinstance(host, str) or not host:
        findings.append(err("host", f"{host!r} must be a host name, e.g. {DEFAULT_HOST}"))
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict):
        findings.append(err("metadata", "must be a JSON object"))
    for unknown in sorted(set(raw) - _KNOWN_FIELDS):
        findings.append(
            err(
                unknown if unknown.strip() else json.dumps(unknown),  # "" would name no field
                f"unknown field (known: {', '.join(sorted(_KNOWN_FIELDS))}); check the spelling",
                "warning",
            )
        )
    if any(f.severity == "error" for f in findings):
        return None, findings
    return (
        CodeLocation(
            name=name,
            module=module,
            port=port,
            host=host,
            enabled=enabled,
            description=str(raw.get("description", "")),
            metadata=metadata,
        ),
        findings,
    )


def module_is_importable(module: str) -> tuple[bool, str]:
    """Whether the import system can find `module`, without executing the module itself.

    find_spec imports the parent packages (e.g. dagster_code/__init__.py), which are kept empty.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if spec is None:
        return False, f"no module named {module!r}"
    return True, ""


def validate_document(
    doc: dict, path: Path, check_modules: bool = True
) -> tuple[list[CodeLocation], list[Finding]]:
    """Every entry that passed validation, and all findings.

    A duplicate name or port is reported on the later entry; the first one keeps it. Ports of
    disabled entries stay reserved so enabling one later cannot clash. Modules are only checked
    for enabled entries (a disabled entry may point at code that was removed).
    """
    findings: list[Finding] = []
    good: list[CodeLocation] = []
    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    for index, raw in enumerate(doc["code_locations"]):
        loc, entry_findings = _parse_entry(path, index, raw)
        findings.extend(entry_findings)
        if loc is None:
            continue
        label = _entry_label(index, raw)
        problems: dict[str, str] = {}  # field -> message
        if loc.name in names:
            problems["name"] = (
                f"{loc.name!r} is already used by {names[loc.name]}; names must be unique"
            )
        else:
            names[loc.name] = label
        if loc.port in ports:
            problems["port"] = (
                f"{loc.port} is already used by {ports[loc.port]}; give each location its own "
                f"port in {PORT_MIN}-{PORT_MAX}"
            )
        else:
            ports[loc.port] = label
        if loc.enabled and check_modules:
            ok, why = module_is_importable(loc.module)
            if not ok:
                problems["module"] = (
                    f"{loc.module!r} is not importable ({why}); check the module path, or set "
                    '"enabled": false'
                )
        findings += [
            Finding("error", str(path), message, entry=label, field=name, location_name=loc.name)
            for name, message in problems.items()
        ]
        if not problems:
            good.append(loc)
    return good, findings


def read_code_locations(
    path: Path | None = None, check_modules: bool = True
) -> tuple[list[CodeLocation], list[Finding]]:
    """Valid entries plus findings, for callers that serve what they can (the supervisor).

    Raises CodeLocationsError only when the file as a whole cannot be read.
    """
    path = Path(path) if path else code_locations_path()
    return validate_document(load_document(path), path, check_modules=check_modules)


def validate(path: Path | None = None, check_modules: bool = True) -> list[Finding]:
    """All findings for the file (empty list: valid)."""
    path = Path(path) if path else code_locations_path()
    try:
        return read_code_locations(path, check_modules)[1]
    except CodeLocationsError as exc:
        return exc.findings


def load_code_locations(path: Path | None = None, check_modules: bool = True) -> list[CodeLocation]:
    """All entries (enabled or not); CodeLocationsError if any entry has an error."""
    locations, findings = read_code_locations(path, check_modules)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise CodeLocationsError(errors)
    return locations
