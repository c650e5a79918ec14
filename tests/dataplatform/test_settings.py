"""dataplatform.settings: read at call time, defaults as documented, bad values named with a fix."""

from __future__ import annotations

import pytest

from dataplatform import settings

AREAS = (
    settings.PathSettings,
    settings.SupervisorSettings,
    settings.GrpcWatchSettings,
    settings.LocalPlatformSettings,
    settings.SharedWorkspaceSettings,
    settings.LocalPostgresSettings,
    settings.UpSettings,
)


def _documented_defaults() -> dict[str, str]:
    """env var -> its default cell in the module docstring's table (continuation rows joined)."""
    documented: dict[str, str] = {}
    name = None
    for line in settings.__doc__.splitlines():
        if not line.startswith("|") or line.startswith("|--"):
            continue
        _, var, default = (cell.strip() for cell in line.strip("|").split("|"))
        if var:
            name, documented[var] = var, default
        elif default and name is not None:
            joiner = "" if documented[name].endswith((",", ":")) else " "
            documented[name] += joiner + default
    return documented


def test_every_setting_is_documented_with_the_default_it_has():
    documented = _documented_defaults()
    for area in AREAS:
        for field in area.model_fields.values():
            assert field.alias in documented, f"{field.alias} is missing from the docstring table"
            default = field.default
            if default is None or default == "":
                continue  # described in words ("unset: ...", "the sample jobs")
            if isinstance(default, bool):
                shown = str(default).lower()
            elif isinstance(default, int | float):
                shown = f"{default:g}"  # 180.0 is documented as 180
            else:
                shown = str(default)
            first = documented[field.alias].split(" ")[0]
            assert first == shown, f"{field.alias}: documented {first!r}, the default is {shown!r}"


def test_env_is_read_at_each_call_not_at_import(monkeypatch):
    monkeypatch.setenv("DAGSTER_INIT_BACKOFF_MAX", "3")
    assert settings.supervisor().backoff_max == 3.0
    monkeypatch.setenv("DAGSTER_INIT_BACKOFF_MAX", "7.5")
    assert settings.supervisor().backoff_max == 7.5
    monkeypatch.setenv("DAGSTER_INIT_BACKOFF_MAX", "")  # empty counts as unset
    assert settings.supervisor().backoff_max == 30.0


def test_platform_dir_override_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("DATAPLATFORM_PLATFORM_DIR", str(tmp_path / "p"))
    assert settings.paths().resolved_platform_dir() == (tmp_path / "p").resolve()
    monkeypatch.delenv("DATAPLATFORM_PLATFORM_DIR")
    assert settings.paths().resolved_platform_dir().name == "platform"


@pytest.mark.parametrize(
    ("name", "value", "read", "fix"),
    [
        ("DAGSTER_WEBSERVER_PORT", "http", settings.local_platform, "DAGSTER_WEBSERVER_PORT=3030"),
        ("DAGSTER_WEBSERVER_PORT", "70000", settings.local_platform, "DAGSTER_WEBSERVER_PORT=3030"),
        ("SAMPLE_RUN_TIMEOUT", "-1", settings.up, "SAMPLE_RUN_TIMEOUT=900.0"),
        ("DAGSTER_INIT_CHILD_OUTPUT", "tty", settings.supervisor, "DAGSTER_INIT_CHILD_OUTPUT=file"),
        (
            "DAGSTER_INIT_LOAD_ERROR_RETRIES",
            "two",
            settings.supervisor,
            "DAGSTER_INIT_LOAD_ERROR_RETRIES=2",
        ),
    ],
)
def test_bad_value_names_the_variable_and_the_fix(monkeypatch, name, value, read, fix):
    monkeypatch.setenv(name, value)
    with pytest.raises(settings.SettingsError) as err:
        read()
    message = str(err.value)
    assert message.startswith(f"env {name}={value!r}: ")
    assert f"fix: set e.g. {fix}, or unset it" in message


def test_shared_workspace_is_off_by_default_and_its_webserver_url_defaults_to_the_local_one(
    monkeypatch, tmp_path
):
    for name in ("DATAPLATFORM_SHARED_WORKSPACE", "DAGSTER_WEBSERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_WEBSERVER_PORT", "3999")
    shared = settings.shared_workspace()
    assert shared.resolved_shared_workspace() is None
    assert shared.resolved_webserver_url() == "http://127.0.0.1:3999"
    monkeypatch.setenv("DATAPLATFORM_SHARED_WORKSPACE", str(tmp_path / "ws.yaml"))
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "http://dagster-webserver:3030/")
    shared = settings.shared_workspace()
    assert shared.resolved_shared_workspace() == (tmp_path / "ws.yaml").resolve()
    assert shared.resolved_webserver_url() == "http://dagster-webserver:3030"


def test_a_webserver_url_without_scheme_is_refused_with_an_example(monkeypatch):
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "dagster-webserver:3030")
    with pytest.raises(settings.SettingsError) as err:
        settings.shared_workspace()
    assert "fix: set e.g. DAGSTER_WEBSERVER_URL=http://dagster-webserver:3030" in str(err.value)
