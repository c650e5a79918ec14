"""Free ports for test platforms, away from a developer's running one (4266-4268, 3030)."""

from __future__ import annotations

import random
import socket

from pyairbyte.runtime.processes import port_is_free


def free_code_location_ports(count: int, low: int = 4276, high: int = 4299) -> list[int]:
    """`count` free ports from the upper code-location range (developers use the bottom).

    Chosen at random, so that two test sessions on one machine (a developer's and CI's) rarely
    pick the same ones between checking and binding.
    """
    ports = [p for p in range(low, high + 1) if port_is_free("127.0.0.1", p)]
    if len(ports) < count:
        raise RuntimeError(f"need {count} free ports in {low}-{high}, found {ports}")
    return sorted(random.sample(ports, count))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
