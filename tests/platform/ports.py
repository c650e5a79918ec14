"""Ports for test platforms, away from a developer's running one (4266-4268, 3030).

Several test sessions may share a machine (a developer's and CI's), all picking from the small
code-location range; each session reserves its ports machine-wide for its lifetime.
"""

from __future__ import annotations

import random
import socket

from pyairbyte.runtime.processes import claim, port_is_free

_reservations: list[socket.socket] = []  # held until this test session exits


def free_code_location_ports(count: int, low: int = 4276, high: int = 4299) -> list[int]:
    """`count` free ports from the upper code-location range, reserved for this session."""
    candidates = [p for p in range(low, high + 1) if port_is_free("127.0.0.1", p)]
    random.shuffle(candidates)
    chosen = []
    for port in candidates:
        reservation = claim(f"dataplatform-test-port-{port}")
        if reservation is None:
            continue  # another session's
        _reservations.append(reservation)
        chosen.append(port)
        if len(chosen) == count:
            return sorted(chosen)
    raise RuntimeError(f"need {count} free ports in {low}-{high}, found {chosen}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
