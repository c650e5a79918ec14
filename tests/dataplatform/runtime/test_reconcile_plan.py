"""What a reconcile starts and stops, decided from the served entries and the file alone."""

from __future__ import annotations

from dataplatform.runtime.code_locations import CodeLocation
from dataplatform.runtime.dagster_init.reconcile import plan


def loc(name, port, module=None, **kw):
    return CodeLocation(name=name, module=module or f"dagster_code.{name}", port=port, **kw)


def test_only_new_removed_and_changed_entries_are_touched():
    current = {"a": loc("a", 4266), "b": loc("b", 4267), "c": loc("c", 4268)}
    wanted = [
        loc("a", 4266, description="edited text: not a change to the server"),
        loc("c", 4270),  # moved to another port: restarted
        loc("d", 4269),  # new
    ]
    todo = plan(current, wanted)
    assert todo.keep == ["a"]
    assert todo.stop == ["b", "c"]
    assert [x.name for x in todo.start] == ["c", "d"]


def test_same_entries_plan_nothing():
    current = {"a": loc("a", 4266, metadata={"connector": "x"})}
    todo = plan(current, [loc("a", 4266, metadata={"connector": "y"})])
    assert todo.empty and todo.keep == ["a"]


def test_a_changed_module_restarts_the_location():
    todo = plan({"a": loc("a", 4266)}, [loc("a", 4266, module="dagster_code.other")])
    assert todo.stop == ["a"] and [x.module for x in todo.start] == ["dagster_code.other"]
