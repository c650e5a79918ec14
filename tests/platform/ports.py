"""Ports for test platforms, away from a developer's running one (4266-4268, 3030)."""

from __future__ import annotations

from pyairbyte.runtime.processes import ephemeral_port, reserve_free_ports


def free_code_location_ports(count: int) -> list[int]:
    """Free ports from the upper code-location range, reserved for this test session."""
    return reserve_free_ports(count, 4276, 4299, owner="test")


def free_port() -> int:
    return ephemeral_port()
