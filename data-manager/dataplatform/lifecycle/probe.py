"""Import code-location modules, each in a clean process, and report what each one exports.

    python -m dataplatform.lifecycle.probe dagster_code.a dagster_code.b    # JSON lines on stdout

The probe process imports Dagster once and then forks one child per module, so each module is
imported into a fresh interpreter state (no module sees another's imports) without paying
Dagster's multi-second import again per module. A child imports the module, checks that it
exports a `Definitions` called `defs`, runs `Definitions.validate_loadable(defs)`, and reports
the module's file, its asset and job counts, each asset's key and table, and whether loading it
imported airbyte.
No bytecode is written (PYTHONDONTWRITEBYTECODE), so probing leaves the tree as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

CHILD_TIMEOUT = 180.0


def _probe_in_child(module_name: str) -> dict:
    import importlib

    from dagster import Definitions

    result: dict = {"module": module_name, "ok": False}
    try:
        module = importlib.import_module(module_name)
    except BaseException as exc:  # any import failure is the finding
        result["error"] = f"import failed: {type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=6)
        return result
    result["file"] = getattr(module, "__file__", None)
    defs = getattr(module, "defs", None)
    if defs is None:
        result["error"] = "imports, but does not export `defs`"
        return result
    if not isinstance(defs, Definitions):
        result["error"] = f"`defs` is a {type(defs).__name__}, not dagster.Definitions"
        return result
    try:
        Definitions.validate_loadable(defs)
        graph = defs.resolve_asset_graph()
        result["assets"] = len(graph.materializable_asset_keys)
        result["asset_tables"] = _asset_tables(defs, graph)
        result["jobs"] = sorted(
            j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")
        )
    except BaseException as exc:
        result["error"] = f"`defs` does not load: {type(exc).__name__}: {exc}"
        return result
    result["imports_airbyte"] = "airbyte" in sys.modules
    result["ok"] = True
    return result


def _asset_tables(defs, graph) -> list[list]:
    """[asset key, the table it materializes (its `dagster/table_name`) or None] for every asset
    the module materializes: what `check` compares across locations."""
    out = []
    for spec in defs.resolve_all_asset_specs():
        if spec.key in graph.materializable_asset_keys:
            table = (spec.metadata or {}).get("dagster/table_name")
            out.append([spec.key.to_user_string(), str(table) if table is not None else None])
    return sorted(out, key=lambda item: item[0])


def _fork_probe(module_name: str) -> dict:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        try:
            payload = json.dumps(_probe_in_child(module_name)).encode()
        except BaseException as exc:
            payload = json.dumps({"module": module_name, "ok": False, "error": repr(exc)}).encode()
        with os.fdopen(write_fd, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        return {"module": module_name, "ok": False, "error": f"the import crashed ({status=})"}
    return json.loads(data)


# Third-party imports every location shares; imported once, before forking, so that children
# share them. Never a project module: each child must import those itself.
_SHARED_IMPORTS = ("dagster", "dagster_dbt")


def main(argv: list[str]) -> int:
    import importlib

    for name in _SHARED_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a child that needs it reports the failure

    for module_name in argv:
        print(json.dumps(_fork_probe(module_name)), flush=True)
    return 0


def probe_modules(modules: list[str], root: Path, env: dict | None = None) -> dict[str, dict]:
    """Module -> result, from one probe subprocess run in `root` (the repository)."""
    if not modules:
        return {}
    run_env = {**(env if env is not None else os.environ), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dataplatform.lifecycle.probe", *modules],
            cwd=root,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT * max(1, len(modules)),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        proc = subprocess.CompletedProcess(exc.cmd, -1, exc.stdout or "", "timed out")
        if isinstance(proc.stdout, bytes):
            proc.stdout = proc.stdout.decode(errors="replace")
    results = {}
    for line in proc.stdout.splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue  # a module printed something of its own
        if isinstance(item, dict) and "module" in item:
            results[item["module"]] = item
    for module in modules:
        results.setdefault(
            module,
            {
                "module": module,
                "ok": False,
                "error": f"the probe process failed (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-1500:]}",
            },
        )
    return results


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
