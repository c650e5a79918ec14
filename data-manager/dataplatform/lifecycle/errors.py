"""The one exception type the lifecycle commands raise for a problem the user can fix."""

from __future__ import annotations


class LifecycleError(RuntimeError):
    """What went wrong and how to fix it; the CLI prints both and exits 1."""

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}\nfix: {fix}" if fix else problem)
