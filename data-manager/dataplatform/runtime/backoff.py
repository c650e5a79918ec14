"""The one restart policy for everything the platform keeps alive.

Code servers (dagster-init's supervisor), the fork server they are forked from (launchers) and,
in local mode, the webserver and the daemon (local/watchdog) all wait the same way before a
restart: 1 s, doubling up to DAGSTER_INIT_BACKOFF_MAX (30 s), and back to 1 s once the process
has stayed up for a minute, so that a crash loop slows down but a rare crash restarts at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INITIAL = 1.0
HEALTHY_AFTER = 60.0


@dataclass
class Backoff:
    maximum: float
    initial: float = INITIAL
    healthy_after: float = HEALTHY_AFTER
    delay: float = field(init=False)

    def __post_init__(self) -> None:
        self.delay = self.initial

    def take(self) -> float:
        """The delay to wait before this restart; the next one waits twice as long."""
        delay = self.delay
        self.delay = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.delay = self.initial

    def note_uptime(self, seconds: float) -> None:
        """A process that stayed up `healthy_after` seconds restarts at the initial delay."""
        if seconds > self.healthy_after:
            self.reset()
