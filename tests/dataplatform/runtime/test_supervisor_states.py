"""The supervisor's state table: every state has a handler, and the status file keeps its names."""

from __future__ import annotations

from pathlib import Path

from dataplatform.runtime.dagster_init.supervisor import LocationState, Supervisor, Timing


def test_every_state_has_a_handler_and_idle_states_do_nothing():
    timing = Timing(startup_timeout=1.0, backoff_max=1.0, load_error_retries=0)
    sup = Supervisor([], [], "127.0.0.1", Path("code-locations.json"), timing)
    assert set(sup._handlers) == set(LocationState)
    assert sup._handlers[LocationState.STOPPED] == sup._on_idle
    assert sup._handlers[LocationState.INVALID] == sup._on_idle


def test_status_names_are_the_ones_the_status_file_has_always_used():
    assert [s.value for s in LocationState] == [
        "starting", "ready", "load_error", "port_in_use", "backoff", "stopped", "invalid",
        "reloading",
    ]  # fmt: skip
