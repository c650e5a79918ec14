"""dbt as a fork of the run worker, instead of a fresh `dbt` process.

dagster-dbt runs each dbt command as a subprocess: a new interpreter that imports dbt-core and
its adapter (2-4 s here) before it reads the first model. A warm run worker (fork mode,
dataplatform.runtime.warm_runs) already has dbt imported, pre-loaded by the fork server. There
the transform forks the worker instead: the child points its stdout and stderr at a pipe, takes
the environment and working directory that dagster-dbt computed for the subprocess, and runs the
same arguments through dbt's own Python entry point (`dbtRunner`). The parent reads dbt's JSON
log lines from the pipe, as it would from the subprocess, so the asset events, asset checks,
error messages, exit codes and termination (SIGINT, then a wait) are those of the stock path.

Why a fork and not dbtRunner in the worker itself: dbt keeps global state (flags, adapters,
its event manager), and a dbt failure then stays in a process that exits.

Why it is safe to fork a worker that runs threads (Dagster's log and termination threads):
the child never returns to them. It replaces sys.stdout and sys.stderr with fresh objects (an
inherited buffer's lock may be held by another thread), uses none of the parent's connections,
and leaves with os._exit.

Used when dbt's entry point is already imported (so the fork saves its start-up) and
DATAPLATFORM_DBT_FORK is not false. Otherwise, and in a spawned or plain run worker, dbt is
the stock subprocess.

dagster-dbt internals used (pinned exactly in pyproject.toml): its resource module calls the
module-level name `DbtCliInvocation.run(args=..., env=..., ...)`, and the invocation uses the
process's `args`, `stdout`, `wait()`, `returncode` and `send_signal()`.
tests/dagster_code/test_dbt_fork.py fails when those change.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import signal
import sys
import time
from pathlib import Path

# Set by PlatformDbtCliResource.cli() around its call to dagster-dbt.
use_fork: contextvars.ContextVar[bool] = contextvars.ContextVar("dbt_fork", default=False)

# dbt's exit codes: 0 success, 1 a model or test failed, 2 dbt itself failed.
_EXIT_FAILURE, _EXIT_ERROR = 1, 2


def available() -> bool:
    """dbt's entry point is imported already: a fork starts without dbt's import time."""
    from dataplatform.dbt import settings

    return settings.dbt_settings().fork and "dbt.cli.main" in sys.modules


class ForkedDbt:
    """A dbt command in a forked child, with the parts of subprocess.Popen dagster-dbt uses."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path):
        self.args = args
        self.returncode: int | None = None
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(read_end)
            _run_dbt_in_child(args[1:], env, cwd, write_end)  # never returns
        os.close(write_end)
        self.stdout = os.fdopen(read_end, "rb")

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                import subprocess

                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)


def _run_dbt_in_child(args: list[str], env: dict[str, str], cwd: Path, out_fd: int) -> None:
    code = _EXIT_ERROR
    try:
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # lives until _exit
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # dbt stops on KeyboardInterrupt
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        from dbt.cli.main import dbtRunner

        result = dbtRunner().invoke(args)
        code = 0 if result.success else (_EXIT_ERROR if result.exception else _EXIT_FAILURE)
        if result.exception is not None:
            print(f"dbt failed: {type(result.exception).__name__}: {result.exception}",
                  file=sys.stderr)  # fmt: skip
    except BaseException as exc:  # KeyboardInterrupt included: report and leave
        print(f"dbt failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        try:
            # What atexit would run: dbt's multiprocessing locks are unlinked and unregistered,
            # or the shared resource tracker reports them as leaked.
            from dagster_code.lib.dbt_internals import run_multiprocessing_exit_hook

            run_multiprocessing_exit_hook()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def install() -> None:
    """Route dagster-dbt's subprocess through ForkedDbt while `use_fork` is set (idempotent)."""
    from dagster_dbt import DbtCliInvocation
    from dagster_dbt.core import resource

    if getattr(resource.DbtCliInvocation, "forks_dbt", False):
        return

    class ForkingDbtCliInvocation(DbtCliInvocation):
        forks_dbt = True

        @classmethod
        def run(cls, args, env, manifest, dagster_dbt_translator, project_dir, target_path,
                raise_on_error, context, adapter, cli_version, dbt_project=None):  # fmt: skip
            if not use_fork.get():
                return DbtCliInvocation.run(
                    args=args, env=env, manifest=manifest,
                    dagster_dbt_translator=dagster_dbt_translator, project_dir=project_dir,
                    target_path=target_path, raise_on_error=raise_on_error, context=context,
                    adapter=adapter, cli_version=cli_version, dbt_project=dbt_project,
                )  # fmt: skip
            _copy_partial_parse(Path(project_dir), Path(target_path))
            invocation = DbtCliInvocation(
                process=ForkedDbt(list(args), env, Path(project_dir)),
                manifest=manifest, project=dbt_project,
                dagster_dbt_translator=dagster_dbt_translator, project_dir=project_dir,
                target_path=target_path, raise_on_error=raise_on_error, context=context,
                adapter=adapter, cli_version=cli_version,
            )  # fmt: skip
            return invocation

    resource.DbtCliInvocation = ForkingDbtCliInvocation


def _copy_partial_parse(project_dir: Path, target_path: Path) -> None:
    """As dagster-dbt does for its subprocess: start from the prepared partial parse."""
    source = project_dir / "target" / "partial_parse.msgpack"
    destination = target_path / "partial_parse.msgpack"
    if source.exists() and not destination.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, destination)
