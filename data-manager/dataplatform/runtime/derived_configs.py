"""Files derived from code-locations.json: workspace.yaml, compose ports, Dockerfile EXPOSE, and
the Helm chart's values (deploy/helm/values.yaml, see dataplatform.runtime.helm_values).

    dataplatform configs write   # regenerate the committed files
    dataplatform configs check   # exit 1 with a diff if they drifted

The committed platform/workspace.yaml is the container one (hosts from the JSON, e.g.
data-manager). Local mode writes its own copy with host 127.0.0.1 under the project directory.
In docker-compose.yaml and Dockerfile.data-manager only the lines between the GENERATED marker
comments are rewritten; everything else there is hand-written.

`write` also refreshes deploy/helm/secret.example.yaml, the placeholder Secrets that list the
connector YAMLs' variables. It is left out of `drift` (and so of `connector add`'s own writes and
the doctor): add renders the derived files before the new connector YAML is on disk.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from dataplatform.runtime import helm_values
from dataplatform.runtime.code_locations import (
    CodeLocation,
    WorkspaceConfig,
    code_locations_path,
    load_code_locations,
    load_document,
    workspace_config,
)
from dataplatform.runtime.processes import write_atomic
from pyairbyte import settings

REGENERATE = "dataplatform configs write"
BEGIN = "# BEGIN GENERATED code-location ports"
END = "# END GENERATED code-location ports"
LOCAL_HOST = "127.0.0.1"


class DerivedConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class DerivedFiles:
    workspace: Path
    compose: Path
    dockerfile: Path
    # The Helm values, and the instance config they copy the run coordinator from; None: skip.
    helm_values: Path | None = None
    instance_config: Path | None = None


def committed_files(root: Path | None = None) -> DerivedFiles:
    root = root or settings.app_root()
    return DerivedFiles(
        workspace=root / "platform" / "workspace.yaml",
        compose=root / "docker-compose.yaml",
        dockerfile=root / "Dockerfile.data-manager",
        helm_values=root / helm_values.VALUES_FILE,
        instance_config=root / "platform" / "dagster.yaml",
    )


def _source_label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(settings.app_root()))
    except ValueError:
        return str(path)


def render_workspace(
    locations: list[CodeLocation],
    ws: WorkspaceConfig,
    mode: str,
    source: str,
) -> str:
    """workspace.yaml for `mode` "container" (hosts from the JSON) or "local" (127.0.0.1)."""
    if mode not in ("container", "local"):
        raise ValueError(f"mode must be 'container' or 'local', not {mode!r}")
    lines = [
        "# Dagster Workspace Configuration - Multiple gRPC Servers",
        f"# Workspace: {ws.workspace_name}",
        f"# Description: {ws.description}",
        f"# GENERATED from {source} ({mode} mode) by:",
        f"#   {REGENERATE}",
        "# Do not edit by hand; edit code-locations.json and regenerate.",
        "",
    ]
    active = [loc for loc in locations if loc.enabled]
    if not active:
        lines.append("load_from: []")
    else:
        lines.append("load_from:")
        for loc in active:
            lines += [
                "  - grpc_server:",
                f"      host: {LOCAL_HOST if mode == 'local' else loc.host}",
                f"      port: {loc.port}",
                f"      location_name: {loc.name}",
            ]
            if loc.description:
                lines.append(f"      # {loc.description}")
    return "\n".join(lines) + "\n"


def _compose_block(locations: list[CodeLocation], indent: str) -> list[str]:
    active = [loc for loc in locations if loc.enabled]
    if not active:  # an empty `ports:` key would be null, which compose rejects
        return [f"{indent}# (no enabled code locations, so no ports)"]
    return [f"{indent}ports:"] + [
        f'{indent}  - "127.0.0.1:{loc.port}:{loc.port}"  # {loc.name} gRPC server' for loc in active
    ]


def _dockerfile_block(locations: list[CodeLocation], indent: str) -> list[str]:
    ports = [str(loc.port) for loc in locations if loc.enabled]
    if not ports:
        return [f"{indent}# (no enabled code locations, so nothing to EXPOSE)"]
    return [f"{indent}EXPOSE {' '.join(ports)}"]


def replace_block(text: str, path: Path, render) -> str:
    """Replace the lines between BEGIN and END markers with render(indent) lines."""
    lines = text.splitlines(keepends=False)
    begins = [i for i, line in enumerate(lines) if line.strip().startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.strip().startswith(END)]
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise DerivedConfigError(
            f"{path}: expected exactly one '{BEGIN}' line followed by one '{END}' line "
            "around the generated ports; restore the two marker comments"
        )
    b, e = begins[0], ends[0]
    indent = lines[b][: len(lines[b]) - len(lines[b].lstrip())]
    new = lines[: b + 1] + render(indent) + lines[e:]
    return "\n".join(new) + ("\n" if text.endswith("\n") else "")


def expected_contents(
    locations: list[CodeLocation], ws: WorkspaceConfig, source: str, files: DerivedFiles
) -> dict[Path, str]:
    """Path -> the content it should have. Reads compose/Dockerfile for their hand-written parts."""
    out = {files.workspace: render_workspace(locations, ws, "container", source)}
    for path, render in (
        (files.compose, lambda ind: _compose_block(locations, ind)),
        (files.dockerfile, lambda ind: _dockerfile_block(locations, ind)),
    ):
        if not path.exists():
            raise DerivedConfigError(f"{path}: missing; it must contain the GENERATED markers")
        out[path] = replace_block(path.read_text(), path, render)
    if files.helm_values is not None:
        try:
            out[files.helm_values] = helm_values.render_values(
                locations, files.instance_config, source, REGENERATE
            )
        except helm_values.HelmValuesError as exc:
            raise DerivedConfigError(str(exc)) from None
    return out


# The committed files name the repository's file, wherever the JSON was read from, so their
# content depends only on the JSON's content.
COMMITTED_SOURCE_LABEL = "data-manager/resources/dagster/code-locations.json"


def _load(path: Path | None) -> tuple[list[CodeLocation], WorkspaceConfig, str]:
    path = path or code_locations_path()
    # Modules are not checked here: generating files must not depend on the import path.
    locations = load_code_locations(path, check_modules=False)
    return locations, workspace_config(load_document(path)), COMMITTED_SOURCE_LABEL


def drift(path: Path | None = None, files: DerivedFiles | None = None) -> dict[Path, str]:
    """Path -> unified diff (committed -> expected) for every file that drifted."""
    locations, ws, source = _load(path)
    files = files or committed_files()
    diffs = {}
    for target, content in expected_contents(locations, ws, source, files).items():
        current = target.read_text() if target.exists() else ""
        if current != content:
            diffs[target] = "".join(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    content.splitlines(keepends=True),
                    fromfile=f"{target} (committed)",
                    tofile=f"{target} (from code-locations.json)",
                )
            )
    return diffs


def write(path: Path | None = None, files: DerivedFiles | None = None) -> list[Path]:
    """Regenerate; returns the files that changed. All content is computed before any write."""
    locations, ws, source = _load(path)
    files = files or committed_files()
    contents = expected_contents(locations, ws, source, files)
    if files.helm_values is not None:
        contents[secret_example_path(files)] = expected_secret_example()
    changed = []
    for target, content in contents.items():
        if not target.exists() or target.read_text() != content:
            write_atomic(target, content)
            changed.append(target)
    return changed


def secret_example_path(files: DerivedFiles) -> Path:
    return files.helm_values.parent / helm_values.SECRET_EXAMPLE_FILE.name


def expected_secret_example(connectors_dir: Path | None = None) -> str:
    from pyairbyte.utils.connector_files import connector_files

    return helm_values.render_secret_example(connector_files(connectors_dir), REGENERATE)


def write_local_workspace(
    target: Path, locations: list[CodeLocation], ws: WorkspaceConfig, source: str
) -> Path:
    return write_workspace(target, locations, ws, source, "local")


def write_workspace(
    target: Path, locations: list[CodeLocation], ws: WorkspaceConfig, source: str, mode: str
) -> Path:
    """Atomically, so a webserver or daemon reading it never sees half a file."""
    write_atomic(target, render_workspace(locations, ws, mode, source))
    return target
