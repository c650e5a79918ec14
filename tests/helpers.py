"""Small helpers shared by tests."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def exported_env(**values: object) -> Iterator[None]:
    """Environment variables set for the block (subprocesses see them), then restored.

    For fixtures of any scope; function-scoped ones can use `monkeypatch` directly.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, str(value))
        yield


def scalar(conn, sql: str, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    return row[0] if row else None


def rows(conn, sql: str, params=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def column_types(conn, schema: str, table: str) -> dict[str, str]:
    """Column name -> information_schema data_type, in column order."""
    return dict(
        rows(
            conn,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, table),
        )
    )


def step_failure_messages(result) -> list[str]:
    """The error messages of failed steps in an in-process Dagster run."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                messages.append(error.message)
                error = error.cause
    return messages


def platform_script(root: Path, name: str, env: dict[str, str], timeout: float = 300):
    """One of the repository's platform/ scripts (start.sh, stop.sh, ...) with `env`."""
    return subprocess.run(
        ["bash", str(root / "platform" / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
    )


def supervisor_status(platform_dir: Path) -> dict:
    """dagster-init's status file: each location's state and pid."""
    return json.loads((platform_dir / "run" / "dagster-init.status.json").read_text())


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
