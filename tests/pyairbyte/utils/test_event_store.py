"""event_store against the real PostgreSQL: dedup counts, concurrent writers, selection."""

from __future__ import annotations

import multiprocessing

import pytest

from pyairbyte.utils import event_store as es


def _user_event(i: int) -> dict:
    return {"event_type": "USER_SYNC_EVENT", "event_data": {"user_id": i, "name": f"user {i}"}}


def _count(pg_conn, schema: str, where: str = "true") -> int:
    with pg_conn.cursor() as cur:
        cur.execute(f'select count(*) from "{schema}".events where {where}')
        return cur.fetchone()[0]


def test_bulk_write_10k_with_10_percent_duplicates_counts_exactly(event_schema, pg_conn):
    events = [_user_event(i) for i in range(9000)]
    # 1000 duplicates of earlier events; half with the keys in another order, which is the same
    # event (the hash is over canonical JSON).
    for i in range(0, 9000, 9):
        data = {"name": f"user {i}", "user_id": i} if i % 2 else {"user_id": i, "name": f"user {i}"}
        events.append({"event_type": "USER_SYNC_EVENT", "event_data": data})
    assert len(events) == 10_000

    result = es.bulk_write_events(events, batch_size=1000)

    assert result == es.BulkWriteResult(
        events_created=9000, duplicates_skipped=1000, total=10_000, batches=9
    )
    assert _count(pg_conn, event_schema) == 9000
    assert _count(pg_conn, event_schema, "status = 'pending' and attempts = 0") == 9000

    again = es.bulk_write_events(events)
    assert (again.events_created, again.duplicates_skipped) == (0, 10_000)
    assert _count(pg_conn, event_schema) == 9000


def test_events_are_numbered_and_handed_out_in_input_order(event_schema):
    events = [{"event_type": "T", "event_data": {"n": n}} for n in (5, 3, 9, 1, 3, 7)]
    assert es.bulk_write_events(events, batch_size=2).events_created == 5
    selected = es.get_unprocessed_or_failed_events("T")
    assert [e["event_data"]["n"] for e in selected] == [5, 3, 9, 1, 7]


def test_same_data_under_another_event_type_is_a_different_event(event_schema):
    first = es.write_event("A", {"x": 1})
    dup = es.write_event("A", {"x": 1})
    other = es.write_event("B", {"x": 1})
    assert first.created and not dup.created and other.created
    assert dup.event_id == first.event_id != other.event_id


def test_bad_input_names_the_item_and_writes_nothing(event_schema, pg_conn):
    events = [_user_event(1), {"event_type": "X"}]
    with pytest.raises(ValueError, match=r"item 1 must be a dict with keys 'event_type' and"):
        es.bulk_write_events(events)
    with pytest.raises(ValueError, match=r"item 0: event_data for 'X' is not JSON-serialisable"):
        es.bulk_write_events([{"event_type": "X", "event_data": {"when": object()}}])
    with pytest.raises(ValueError, match="event_type must be a non-empty string"):
        es.write_event("", {})
    with pg_conn.cursor() as cur:
        cur.execute("select to_regclass(%s)", (f'"{event_schema}".events',))
        assert cur.fetchone()[0] is None  # validation happens before the store is even created


def _writer(start: int, stop: int, barrier, results) -> None:
    events = [_user_event(i) for i in range(start, stop)]
    barrier.wait(timeout=60)
    try:
        written = es.bulk_write_events(events, batch_size=500)
        results.put({"status": "success", **vars(written)})
    except Exception as exc:  # reported to the parent, which fails the test
        results.put({"status": "raised", "error": repr(exc)})


def test_two_processes_writing_overlapping_batches(event_schema, pg_conn):
    # Writers race from an empty database, so creating the schema on first use races too.
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(0, 6000, barrier, results)),
        ctx.Process(target=_writer, args=(3000, 9000, barrier, results)),
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    assert [o["status"] for o in outcomes] == ["success", "success"], outcomes
    assert sum(o["events_created"] for o in outcomes) == 9000
    assert sum(o["duplicates_skipped"] for o in outcomes) == 3000
    for o in outcomes:
        assert o["events_created"] + o["duplicates_skipped"] == 6000
    assert _count(pg_conn, event_schema) == 9000
    with pg_conn.cursor() as cur:
        cur.execute(
            f"""select count(distinct event_hash), count(distinct (event_data->>'user_id')::int)
                from "{event_schema}".events"""
        )
        assert cur.fetchone() == (9000, 9000)


def test_unprocessed_or_failed_selection_and_status_updates(event_schema, monkeypatch):
    ids = [es.write_event("ORDER", {"n": n}).event_id for n in range(6)]
    other_type = es.write_event("INVOICE", {"n": 0}).event_id
    pending, processed, failed_once, failed_out, in_flight, failed_twice = ids

    assert es.mark_event_processing(processed)["attempts"] == 1
    es.mark_event_processed(processed, 200, "ok")
    assert es.mark_event_processing(processed) is None  # processed events cannot be claimed

    es.mark_event_processing(failed_once)
    failed = es.mark_event_failed(failed_once, "HTTP 500: boom", 500, "boom")
    assert (failed["status"], failed["attempts"], failed["last_error"]) == (
        "failed",
        1,
        "HTTP 500: boom",
    )

    for _ in range(3):
        es.mark_event_processing(failed_out)
        es.mark_event_failed(failed_out, "x" * 5000)
    for _ in range(2):
        es.mark_event_processing(failed_twice)
        es.mark_event_failed(failed_twice, "timeout")
    es.mark_event_processing(in_flight)
    assert es.mark_event_processing(in_flight) is None  # a second handler cannot claim it

    selected = es.get_unprocessed_or_failed_events("ORDER", max_attempts=3)
    assert [e["id"] for e in selected] == [pending, failed_once, failed_twice]
    assert [e["status"] for e in selected] == ["pending", "failed", "failed"]
    assert selected[0]["event_data"] == {"n": 0}
    assert [e["attempts"] for e in selected] == [0, 1, 2]

    monkeypatch.setenv("EVENT_STORE_MAX_ATTEMPTS", "10")
    assert [e["id"] for e in es.get_unprocessed_or_failed_events("ORDER")] == [
        pending,
        failed_once,
        failed_out,
        failed_twice,
    ]
    assert [e["id"] for e in es.get_unprocessed_or_failed_events("ORDER", limit=1)] == [pending]
    assert [e["id"] for e in es.get_unprocessed_or_failed_events("INVOICE")] == [other_type]

    truncated = es.get_event(failed_out)["last_error"]
    assert truncated.endswith("... [truncated]") and len(truncated) == 4000 + len("... [truncated]")
    done = es.get_event(processed)
    assert (done["status"], done["response_status_code"], done["response_body"]) == (
        "processed",
        200,
        "ok",
    )
    assert done["processed_at"] is not None
    with pytest.raises(es.EventNotFoundError, match="event 999999 does not exist"):
        es.mark_event_processed(999_999)
