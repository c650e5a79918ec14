"""code-locations.json and the files derived from it (workspace.yaml, compose ports, EXPOSE).

The JSON is judged by the platform's own validator, and the derived files by the platform's own
renderer (`derived_configs.drift`), so `check` and the platform never disagree about what is valid.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from dataplatform.lifecycle.doctor.report import ERROR, Report
from dataplatform.lifecycle.project import Project, entries_by_name
from dataplatform.runtime import derived_configs
from dataplatform.runtime.code_locations import CodeLocationsError, load_document, validate


def check_code_locations(project: Project, report: Report) -> dict | None:
    """Validate the JSON; returns the document when it could be read."""
    for finding in validate(project.code_locations, check_modules=False):
        # Module imports are probed in a clean process by the packages checks instead.
        report.add_finding(
            replace(
                finding,
                where="code-locations",
                entry=f"{project.relative(Path(finding.where))}: {finding.entry}",
                fix="edit the entry as the message says, then regenerate the derived files: "
                f"{derived_configs.REGENERATE}",
            )
        )
    try:
        return load_document(project.code_locations)
    except CodeLocationsError:
        return None


def _workspace_ports(path: Path) -> dict[str, int]:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    ports = {}
    for item in doc.get("load_from") or []:
        server = item.get("grpc_server") if isinstance(item, dict) else None
        if isinstance(server, dict) and "location_name" in server:
            ports[str(server["location_name"])] = server.get("port")
    return ports


def _report_workspace_ports(project: Project, doc: dict, workspace: Path, report: Report) -> None:
    """Name the location and the exact port, which a raw diff of workspace.yaml buries."""
    served = _workspace_ports(workspace)
    for name, entry in entries_by_name(doc).items():
        if not entry.get("enabled", True):
            continue
        if name not in served:
            report.add(
                ERROR,
                "config-files",
                f"{project.relative(workspace)} does not serve code location {name} "
                f"(code-locations.json: port {entry.get('port')})",
                derived_configs.REGENERATE,
            )
        elif served[name] != entry.get("port"):
            report.add(
                ERROR,
                "config-files",
                f"{project.relative(workspace)} serves {name} on port {served[name]}, "
                f"but code-locations.json says port {entry.get('port')}",
                derived_configs.REGENERATE,
            )


def check_derived_files(project: Project, doc: dict, report: Report) -> None:
    files = project.derived_files()
    try:
        drifted = derived_configs.drift(project.code_locations, files)
    except (CodeLocationsError, derived_configs.DerivedConfigError) as exc:
        report.add(ERROR, "config-files", str(exc), derived_configs.REGENERATE)
        return
    if files.workspace in drifted:
        _report_workspace_ports(project, doc, files.workspace, report)
    for path, diff in drifted.items():
        changed = [line for line in diff.splitlines()[2:] if line[:1] in "+-" and line[1:].strip()]
        report.add(
            ERROR,
            "config-files",
            f"{project.relative(path)} does not match code-locations.json:\n          "
            + "\n          ".join(changed[:8]),
            derived_configs.REGENERATE,
        )
