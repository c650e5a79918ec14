"""Connector YAMLs: each one valid with its env variables set, names unique, and every
location's connector declared by one."""

from __future__ import annotations

from pathlib import Path

from dataplatform.lifecycle.doctor.report import ERROR, Report
from dataplatform.lifecycle.location_connectors import connector_of
from dataplatform.lifecycle.project import Project, entries_by_name
from pyairbyte.utils.connector_config import ConnectorConfigError, load_connector_file
from pyairbyte.utils.connector_files import connector_files, find_connector_file


def check_connector_files(project: Project, report: Report) -> None:
    names: dict[str, Path] = {}
    for path in connector_files(project.connectors_dir):
        try:
            connector = load_connector_file(path)
        except ConnectorConfigError as exc:
            report.add(
                ERROR, "connectors", f"{exc.path}: field '{exc.field}': {exc.problem}", exc.fix
            )
            continue
        if connector.name in names:
            report.add(
                ERROR,
                "connectors",
                f"{path.name} and {names[connector.name].name} both declare name "
                f"{connector.name!r}; sync_connector would pick one of them",
                "give each connector YAML its own `name:`",
            )
        names.setdefault(connector.name, path)


def check_locations_have_connectors(project: Project, doc: dict, report: Report) -> None:
    """Each entry's metadata.connector names a YAML that exists (the entry is the record of
    what a location syncs; its Python is not read)."""
    for name, entry in entries_by_name(doc).items():
        connector = connector_of(entry)
        if connector is None:
            continue
        try:
            find_connector_file(connector, project.connectors_dir)
        except ConnectorConfigError:
            report.add(
                ERROR,
                "connectors",
                f"code location {name} syncs connector {connector!r} (its metadata.connector in "
                f"code-locations.json), but no YAML in "
                f"{project.relative(project.connectors_dir)} declares it",
                f"add {connector}.yaml there (or correct metadata.connector)",
            )


def check_connectors(project: Project, doc: dict, report: Report) -> None:
    check_connector_files(project, report)
    check_locations_have_connectors(project, doc, report)
