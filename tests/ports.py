"""Ports and clean-up for test platforms, kept away from a developer's running one."""

from __future__ import annotations

from pathlib import Path

from dataplatform.runtime.processes import (
    ephemeral_port,
    read_live_pid,
    reserve_free_ports,
    terminate,
)


def free_code_location_ports(count: int) -> list[int]:
    """Free ports from the upper code-location range, reserved for this test session."""
    return reserve_free_ports(count, 4272, 4299, owner="test")


def free_port() -> int:
    return ephemeral_port()


def stop_recorded_processes(platform_dir: Path) -> list[int]:
    """Last-resort clean-up: stop every process a test platform recorded in its pid files.

    Code servers run in their own sessions, so killing dagster-init alone would orphan them.
    """
    stopped = []
    for pid_file in sorted((platform_dir / "run").glob("*.pid")):
        pid = read_live_pid(pid_file)
        if pid and terminate(pid, timeout=15):
            stopped.append(pid)
    return stopped
