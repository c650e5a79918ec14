"""A connector secret given as ${VAR} appears in no output of a real run.

The sample API requires an API key, the sample connector's YAML takes it from SAMPLE_API_KEY
(`api_key: ${SAMPLE_API_KEY:-}`, an `airbyte_secret` in its manifest's spec), and a run of
`sample_product_sync_pipeline` on a real local platform must succeed with it. Then the secret is
searched for, byte for byte, in every file the platform and PyAirbyte wrote (process logs,
compute logs, PyAirbyte's logs and staging files) and in a dump of the whole database: run
bodies and tags, the event log (every Dagster event and asset metadata), compute logs.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from pyairbyte import settings
from tests.reliability.conftest import FINISHED, start_fault_platform

pytestmark = [pytest.mark.platform, pytest.mark.slow]


def _files_containing(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    return found


def test_a_connector_secret_appears_in_no_log_event_or_table(pg, tmp_path):
    secret = f"sk-{secrets.token_hex(16)}"
    env = {**os.environ, "SAMPLE_API_KEY": secret}
    with start_fault_platform(tmp_path, env=env) as p:
        p.api.api_key = secret  # the API now refuses requests without it
        run_id = p.launch()
        status, _ = p.wait_for_status(run_id, FINISHED, timeout=300)
        assert status == "SUCCESS"
        assert any(path.startswith("/products") for path in p.api.requests)

        needle = secret.encode()
        leaks = _files_containing(p.platform_dir, needle)
        leaks += _files_containing(settings.project_dir() / "logs", needle)
        leaks += _files_containing(settings.project_dir() / "airbyte", needle)
        dump = subprocess.run(
            ["pg_dump", "--data-only", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, pg.dbname],
            env={**os.environ, "PGPASSWORD": pg.password},
            capture_output=True,
            timeout=120,
        )
        assert dump.returncode == 0, dump.stderr.decode()[-2000:]
        assert b"event_logs" in dump.stdout and b"dagster_compute_logs" in dump.stdout
        if needle in dump.stdout:
            leaks.append("the database dump")
        assert leaks == []
