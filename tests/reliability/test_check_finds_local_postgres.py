"""`dataplatform check` without POSTGRES_HOST looks at the running local platform's PostgreSQL.

Before, it connected to 127.0.0.1:5432 (a system server, or nothing) while the platform's data
was in its private cluster on LOCAL_PG_PORT, behind a password only the platform knew.
"""

from __future__ import annotations

import json

from dataplatform.lifecycle.doctor import cache_columns


def _fake_platform(platform_dir, running: bool) -> None:
    data = platform_dir / "postgres" / "data"
    data.mkdir(parents=True)
    if running:
        (data / "postmaster.pid").write_text("4711\n")
    (platform_dir / "postgres" / "data.password").write_text("s3cret\n")
    state = {
        "postgres": {"managed": True, "data_dir": str(data), "port": 55999},
        "env": {
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": "55999",
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "dataplatform",
        },
    }
    (platform_dir / "run").mkdir()
    (platform_dir / "run" / "platform.json").write_text(json.dumps(state))


def test_without_postgres_host_check_uses_the_running_private_cluster(tmp_path, monkeypatch):
    _fake_platform(tmp_path, running=True)
    monkeypatch.setenv("DATAPLATFORM_PLATFORM_DIR", str(tmp_path))
    for name in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        monkeypatch.delenv(name, raising=False)
    pg = cache_columns._postgres()
    assert (pg.host, pg.port, pg.password, pg.dbname) == (
        "127.0.0.1",
        55999,
        "s3cret",
        "dataplatform",
    )


def test_a_stopped_platform_or_postgres_host_means_the_configured_server(tmp_path, monkeypatch):
    _fake_platform(tmp_path, running=False)
    monkeypatch.setenv("DATAPLATFORM_PLATFORM_DIR", str(tmp_path))
    monkeypatch.delenv("POSTGRES_HOST", raising=False)
    monkeypatch.delenv("POSTGRES_PORT", raising=False)
    assert cache_columns._postgres().port == 5432
    monkeypatch.setenv("POSTGRES_HOST", "db.example")
    (tmp_path / "postgres" / "data" / "postmaster.pid").write_text("4711\n")
    assert cache_columns._postgres().host == "db.example"
