"""A sync runs offline and writes its files under the project directory only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SYNC = """
import json
from pyairbyte.utils.pyairbyte_sync import sync_connector
import airbyte.constants as c
result = sync_connector("sample-connector")
print(json.dumps({"status": result["status"], "error": result["error"],
                  "offline": c.AIRBYTE_OFFLINE_MODE}))
"""


def test_sync_writes_only_under_the_project_dir(pg, sample_api, tmp_path):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    project = tmp_path / "project"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AIRBYTE_") and k != "DO_NOT_TRACK"
    }
    env.update(DATAPLATFORM_PROJECT_DIR=str(project), TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = subprocess.run(
        [sys.executable, "-c", SYNC], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome == {"status": "success", "error": None, "offline": True}

    assert list(workdir.iterdir()) == []  # nothing in the current directory
    assert any((project / "logs" / "airbyte").rglob("*.log"))
    assert (project / "airbyte").is_dir()


def test_ast_parse_is_safe_from_many_threads_at_once():
    """The declarative CDK parses literals from worker threads; on CPython < 3.11.9 a parse
    could fail with "SystemError: AST constructor recursion depth mismatch" (the race needs a
    garbage collection at the wrong moment, so it is not reproduced here). The guard is in place
    once PyAirbyte's environment is configured, and parsing from many threads still works."""
    import ast
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from pyairbyte.utils.airbyte_env import configure_airbyte_environment

    configure_airbyte_environment(create_dirs=False)
    assert getattr(ast.parse, "_serialized", False) == (sys.version_info < (3, 11, 9))
    expression = "[" * 40 + "{'a': (1, 2.5, 'x')}" + "]" * 40

    def parse_many(_):
        for _ in range(300):
            assert ast.literal_eval(expression)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(parse_many, range(8)))
