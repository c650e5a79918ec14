"""Automation in the connector YAML: `schedule:`, `freshness:` and `retry:`, parsed and validated.

    schedule:
      cron: "0 6 * * *"          # five fields, or @hourly / @daily / @weekly / @monthly / @yearly
      timezone: Europe/Stockholm # an IANA name; default UTC
      status: running            # default stopped: a new schedule never fires until turned on
    freshness:
      max_lag: 26h               # <n>m, <n>h or <n>d: how old the newest sync may be
      status: running            # the freshness checks' sensor; default stopped
    retry:
      attempts: 3                # tries in all, the first included
      delay: 30s                 # before the first retry: <n>s, <n>m (or a number of seconds)
      backoff: exponential       # exponential (default), linear or constant

The Dagster side (dagster_code/lib) turns these into a schedule of the pipeline job, freshness
checks on the sync's assets and a retry policy on the sync step; dbt's source freshness comes
from `max_lag` too. The connector YAML is the one place they are written.

Framework-free, like every util: the values are plain dataclasses; cron is checked here by its
shape and ranges (Dagster checks it once more when it builds the schedule). Errors are
`ConnectorConfigError`, naming the file, the field and the fix. `load_automation` reads only
these keys, without expanding `${VAR}`s, so a code server can load a location whose secrets are
set only where runs execute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pyairbyte.errors import ConnectorConfigError
from pyairbyte.utils.connector_files import find_connector_file, read_connector_yaml

AUTOMATION_KEYS = ("schedule", "freshness", "retry")
STATUSES = ("stopped", "running")
BACKOFFS = ("exponential", "linear", "constant")
_CRON_MACROS = frozenset({"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly"})
_CRON_MACROS |= {"@annually"}
# (low, high, names) of minute, hour, day of month, month, day of week (7 is Sunday too).
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_LAG = re.compile(r"^\s*(\d+)\s*(m|min|minutes?|h|hours?|d|days?)\s*$", re.IGNORECASE)
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds?|m|min|minutes?)?\s*$", re.IGNORECASE)
_DBT_PERIOD = {"m": "minute", "h": "hour", "d": "day"}
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class ScheduleSettings:
    cron: str
    timezone: str = "UTC"
    running: bool = False


@dataclass(frozen=True)
class FreshnessSettings:
    """`max_lag` as written in dbt's terms (`count` `period`s) and as a timedelta."""

    count: int
    period: str  # minute, hour or day: dbt's freshness periods
    running: bool = False

    @property
    def max_lag(self) -> timedelta:
        return timedelta(**{f"{self.period}s": self.count})

    def dbt_freshness(self) -> dict[str, Any]:
        return {"error_after": {"count": self.count, "period": self.period}}


@dataclass(frozen=True)
class RetrySettings:
    attempts: int  # tries in all; attempts - 1 retries
    delay_seconds: float = 10.0
    backoff: str = "exponential"

    @property
    def max_retries(self) -> int:
        return self.attempts - 1


@dataclass(frozen=True)
class Automation:
    schedule: ScheduleSettings | None = None
    freshness: FreshnessSettings | None = None
    retry: RetrySettings | None = None


def parse_automation(data: dict, path: Path) -> Automation:
    """The automation keys of a connector YAML's top-level mapping, validated."""
    return Automation(
        schedule=_schedule(data.get("schedule"), path),
        freshness=_freshness(data.get("freshness"), path),
        retry=_retry(data.get("retry"), path),
    )


def load_automation(connector_name: str, directory: Path | None = None) -> Automation:
    """The automation of the connector YAML named `connector_name`; none when no YAML has that
    name (the sync itself reports a missing YAML, with the files there are)."""
    try:
        path = find_connector_file(connector_name, directory)
    except ConnectorConfigError:
        return Automation()
    data = read_connector_yaml(path)
    return parse_automation(data, path) if isinstance(data, dict) else Automation()


def check_mapping(
    value: Any, path: Path, key: str, required: tuple[str, ...], allowed: tuple, example: str
) -> dict:
    """`value` as the mapping of the YAML block `key`: only `allowed` keys, every `required` one
    set; else `ConnectorConfigError` on the block (or the key), with `example` in the fix."""
    if not isinstance(value, dict):
        raise ConnectorConfigError(
            path, key, f"expected a mapping, got {type(value).__name__}", f"write e.g. {example}"
        )
    for name in value:
        if name not in allowed:
            raise ConnectorConfigError(
                path,
                f"{key}.{name}",
                f"unknown key {str(name)[:40]!r}",
                f"remove it or use one of: {', '.join(allowed)}",
            )
    for name in required:
        if value.get(name) is None:
            raise ConnectorConfigError(
                path, f"{key}.{name}", "missing required field", f"write e.g. {example}"
            )
    return value


def _status(value: Any, path: Path, field_name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, str) or value.lower() not in STATUSES:
        raise ConnectorConfigError(
            path,
            field_name,
            f"expected running or stopped, got {str(value)[:40]!r}",
            f"write `status: running`, or leave it out to start {field_name.split('.')[0]} stopped",
        )
    return value.lower() == "running"


def _schedule(value: Any, path: Path) -> ScheduleSettings | None:
    if value is None:
        return None
    example = '`schedule: {cron: "0 6 * * *", timezone: UTC}`'
    value = check_mapping(
        value, path, "schedule", ("cron",), ("cron", "timezone", "status"), example
    )
    cron = value["cron"]
    problem = cron_problem(cron) if isinstance(cron, str) else "expected a quoted cron string"
    if problem:
        raise ConnectorConfigError(
            path,
            "schedule.cron",
            problem,
            'write five fields, minute hour day-of-month month day-of-week, e.g. `cron: "0 6 * '
            '* *"` (06:00 daily), or @hourly/@daily/@weekly/@monthly',
        )
    timezone = value.get("timezone", "UTC")
    if not isinstance(timezone, str) or not _is_timezone(timezone):
        raise ConnectorConfigError(
            path,
            "schedule.timezone",
            f"{str(timezone)[:60]!r} is not an IANA time zone",
            "write a name such as UTC, Europe/Stockholm or America/New_York",
        )
    running = _status(value.get("status"), path, "schedule.status")
    return ScheduleSettings(cron=" ".join(cron.split()), timezone=timezone, running=running)


def _is_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def cron_problem(cron: str) -> str | None:
    """Why `cron` is not a five-field cron expression Dagster accepts, or None."""
    text = cron.strip()
    if text.lower() in _CRON_MACROS:
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"{cron[:60]!r} has {len(fields)} fields, not 5"
    for part, (label, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            problem = _cron_item_problem(item.lower(), low, high, names)
            if problem:
                return f"{cron!r}: {label} field {part!r}: {problem}"
    return None


def _cron_item_problem(item: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    base, _, step = item.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return f"step {step!r} is not a positive number"
    if base == "*":
        return None
    for bound in base.split("-", 1):
        if bound in names:  # months count from 1, days of the week from 0 (Sunday)
            number = names.index(bound) + (1 if names is _MONTHS else 0)
        elif bound.isdigit():
            number = int(bound)
        else:
            return f"{bound!r} is not a number" + (f" or a name ({names[0]}...)" if names else "")
        if not low <= number <= high:
            return f"{number} is outside {low}-{high}"
    return None


def _freshness(value: Any, path: Path) -> FreshnessSettings | None:
    if value is None:
        return None
    example = "`freshness: {max_lag: 26h}`"
    value = check_mapping(value, path, "freshness", ("max_lag",), ("max_lag", "status"), example)
    match = _LAG.match(str(value["max_lag"])) if isinstance(value["max_lag"], str) else None
    if match is None or int(match.group(1)) == 0:
        raise ConnectorConfigError(
            path,
            "freshness.max_lag",
            f"{str(value['max_lag'])[:40]!r} is not a duration in minutes, hours or days",
            "write a positive whole number with m, h or d, e.g. `max_lag: 90m`, `26h` or `2d`",
        )
    period = _DBT_PERIOD[match.group(2)[0].lower()]
    running = _status(value.get("status"), path, "freshness.status")
    return FreshnessSettings(count=int(match.group(1)), period=period, running=running)


def _retry(value: Any, path: Path) -> RetrySettings | None:
    if value is None:
        return None
    example = "`retry: {attempts: 3, delay: 30s, backoff: exponential}`"
    allowed = ("attempts", "delay", "backoff")
    value = check_mapping(value, path, "retry", ("attempts",), allowed, example)
    attempts = value["attempts"]
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts:
        raise ConnectorConfigError(
            path,
            "retry.attempts",
            f"expected a whole number of tries from 1 to {MAX_ATTEMPTS}, got {attempts!r}",
            "write e.g. `attempts: 3` (the first try and two retries)",
        )
    if attempts > MAX_ATTEMPTS:
        raise ConnectorConfigError(
            path,
            "retry.attempts",
            f"{attempts} tries would hammer a failing source (at most {MAX_ATTEMPTS})",
            f"write `attempts:` from 1 to {MAX_ATTEMPTS}; a longer outage is the schedule's next "
            "run",
        )
    delay = _delay_seconds(value.get("delay", 10), path)
    backoff = value.get("backoff", "exponential")
    if not isinstance(backoff, str) or backoff.lower() not in BACKOFFS:
        raise ConnectorConfigError(
            path,
            "retry.backoff",
            f"unknown backoff {str(backoff)[:40]!r}",
            f"write one of: {', '.join(BACKOFFS)}",
        )
    return RetrySettings(attempts=attempts, delay_seconds=delay, backoff=backoff.lower())


def _delay_seconds(value: Any, path: Path) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DELAY.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConnectorConfigError(
            path,
            "retry.delay",
            f"{str(value)[:40]!r} is not a duration in seconds or minutes",
            "write e.g. `delay: 30s`, `delay: 2m` or `delay: 30` (seconds)",
        )
    unit = (match.group(2) or "s")[0].lower()
    return float(match.group(1)) * (60 if unit == "m" else 1)
