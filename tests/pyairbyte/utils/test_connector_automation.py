"""`schedule:`, `freshness:` and `retry:` in the connector YAML: what the loader accepts, and the
message (file, field, fix) for each mistake."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from pyairbyte.utils.connector_automation import (
    Automation,
    FreshnessSettings,
    RetrySettings,
    ScheduleSettings,
    cron_problem,
    load_automation,
)
from pyairbyte.utils.connector_config import ConnectorConfigError, load_connector_file

BASE = """
version: 1
name: source-shop
connector_type: source
pip_url: airbyte-source-shop==1.0.0
config:
  api_key: ${SHOP_API_KEY}
"""
AUTOMATION = """
schedule:
  cron: "30 5 * * mon-fri"
  timezone: Europe/Stockholm
  status: running
freshness:
  max_lag: 90m
retry:
  attempts: 4
  delay: 2m
  backoff: linear
"""


@pytest.fixture
def connectors_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONNECTORS_DIR", str(tmp_path))
    monkeypatch.setenv("SHOP_API_KEY", "k-123456")
    return tmp_path


def write(directory, extra: str):
    path = directory / "shop.yaml"
    path.write_text(textwrap.dedent(BASE) + textwrap.dedent(extra))
    return path


def test_the_three_keys_are_read_with_their_values(connectors_dir):
    connector = load_connector_file(write(connectors_dir, AUTOMATION))
    assert connector.automation == Automation(
        schedule=ScheduleSettings("30 5 * * mon-fri", "Europe/Stockholm", running=True),
        freshness=FreshnessSettings(count=90, period="minute"),
        retry=RetrySettings(attempts=4, delay_seconds=120.0, backoff="linear"),
    )
    assert connector.automation.freshness.max_lag == timedelta(minutes=90)
    assert connector.automation.retry.max_retries == 3


def test_defaults_stopped_utc_and_exponential(connectors_dir):
    path = write(connectors_dir, 'schedule: {cron: "@daily"}\nretry: {attempts: 2}\n')
    automation = load_connector_file(path).automation
    assert automation.schedule == ScheduleSettings("@daily", "UTC", running=False)
    assert automation.retry == RetrySettings(attempts=2, delay_seconds=10.0, backoff="exponential")
    assert automation.freshness is None


def test_without_the_keys_there_is_no_automation(connectors_dir):
    assert load_connector_file(write(connectors_dir, "")).automation == Automation()


def test_a_code_server_reads_automation_without_the_connectors_secrets(connectors_dir, monkeypatch):
    write(connectors_dir, AUTOMATION)
    monkeypatch.delenv("SHOP_API_KEY")  # set only where runs execute
    assert load_automation("source-shop").schedule.cron == "30 5 * * mon-fri"
    assert load_automation("no-such-connector") == Automation()  # the sync reports that one


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        (
            "schedule: daily\n",
            "schedule",
            "expected a mapping, got str. Fix: write e.g. "
            '`schedule: {cron: "0 6 * * *", timezone: UTC}`',
        ),
        (
            "schedule: {timezone: UTC}\n",
            "schedule.cron",
            "missing required field. Fix: write e.g. "
            '`schedule: {cron: "0 6 * * *", timezone: UTC}`',
        ),
        (
            'schedule: {cron: "0 6 * *"}\n',
            "schedule.cron",
            "'0 6 * *' has 4 fields, not 5. Fix: write five fields, minute hour day-of-month "
            'month day-of-week, e.g. `cron: "0 6 * * *"` (06:00 daily), or '
            "@hourly/@daily/@weekly/@monthly",
        ),
        (
            'schedule: {cron: "0 25 * * *"}\n',
            "schedule.cron",
            "'0 25 * * *': hour field '25': 25 is outside 0-23. Fix: write five fields",
        ),
        (
            'schedule: {cron: "0 6 * * *", timezone: Mars/Olympus}\n',
            "schedule.timezone",
            "'Mars/Olympus' is not an IANA time zone. Fix: write a name such as UTC, "
            "Europe/Stockholm or America/New_York",
        ),
        (
            'schedule: {cron: "0 6 * * *", status: on}\n',  # YAML 1.1 reads `on` as true
            "schedule.status",
            "expected running or stopped, got 'True'. Fix: write `status: running`, or leave it "
            "out to start schedule stopped",
        ),
        (
            'schedule: {cron: "0 6 * * *", running: true}\n',
            "schedule.running",
            "unknown key 'running'. Fix: remove it or use one of: cron, timezone, status",
        ),
        (
            "freshness: {max_lag: 26}\n",
            "freshness.max_lag",
            "'26' is not a duration in minutes, hours or days. Fix: write a positive whole "
            "number with m, h or d, e.g. `max_lag: 90m`, `26h` or `2d`",
        ),
        (
            "freshness: {max_lag: 0h}\n",
            "freshness.max_lag",
            "'0h' is not a duration in minutes, hours or days",
        ),
        (
            "retry: {attempts: 0}\n",
            "retry.attempts",
            "expected a whole number of tries from 1 to 10, got 0. Fix: write e.g. "
            "`attempts: 3` (the first try and two retries)",
        ),
        (
            "retry: {attempts: 50}\n",
            "retry.attempts",
            "50 tries would hammer a failing source (at most 10)",
        ),
        (
            "retry: {attempts: 3, delay: soon}\n",
            "retry.delay",
            "'soon' is not a duration in seconds or minutes. Fix: write e.g. `delay: 30s`",
        ),
        (
            "retry: {attempts: 3, backoff: fibonacci}\n",
            "retry.backoff",
            "unknown backoff 'fibonacci'. Fix: write one of: exponential, linear, constant",
        ),
    ],
    ids=[
        "schedule-not-a-mapping",
        "no-cron",
        "four-fields",
        "hour-out-of-range",
        "bad-timezone",
        "bad-status",
        "unknown-schedule-key",
        "lag-without-unit",
        "zero-lag",
        "zero-attempts",
        "too-many-attempts",
        "bad-delay",
        "bad-backoff",
    ],
)
def test_each_mistake_names_file_field_and_fix(connectors_dir, extra, field, message):
    path = write(connectors_dir, extra)
    with pytest.raises(ConnectorConfigError) as info:
        load_connector_file(path)
    assert info.value.field == field
    assert str(info.value).startswith(f"{path}: field '{field}': {message}")


@pytest.mark.parametrize(
    "cron",
    [
        "0 6 * * *",
        "*/15 * * * *",
        "0 0 1,15 * *",
        "0 9-17 * jan-jun mon-fri",
        "0 0 * * 7",
        "@hourly",
    ],
)
def test_crons_dagster_accepts_are_accepted(cron):
    from dagster._utils.schedules import is_valid_cron_string

    assert cron_problem(cron) is None
    assert cron.startswith("@") or is_valid_cron_string(cron)


@pytest.mark.parametrize("cron", ["* * * * * *", "60 * * * *", "0 0 0 * *", "*/0 * * * *", "x"])
def test_crons_dagster_refuses_are_refused(cron):
    from dagster._utils.schedules import is_valid_cron_string

    assert cron_problem(cron) is not None
    assert not is_valid_cron_string(cron)
