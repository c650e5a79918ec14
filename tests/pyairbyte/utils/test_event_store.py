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


# --- concurrent processors, and the lease --------------------------------------------------------

WRITERS, PER_WRITER, OVERLAP_STEP = 4, 160, 80  # writer k writes users k*80 .. k*80+159
DISTINCT_EVENTS = OVERLAP_STEP * (WRITERS - 1) + PER_WRITER


def _slow_writer(start: int, barrier, results) -> None:
    """Writes in small batches, so the processors work while events still arrive."""
    barrier.wait(timeout=60)
    created = 0
    try:
        for batch_start in range(start, start + PER_WRITER, 40):
            events = [_user_event(i) for i in range(batch_start, batch_start + 40)]
            created += es.bulk_write_events(events, batch_size=40).events_created
        results.put({"role": "writer", "created": created})
    except Exception as exc:
        results.put({"role": "writer", "error": repr(exc)})


def _processor(name: str, schema: str, barrier, writers_done, results) -> None:
    """Claim, 'handle' (log the event id with this processor's name) and mark processed."""
    import psycopg2

    from pyairbyte import settings

    barrier.wait(timeout=60)
    conn = psycopg2.connect(**settings.postgres_settings().psycopg2_kwargs())
    conn.autocommit = True
    handled = 0
    try:
        while True:
            done = writers_done.is_set()  # read before fetching: no event can be missed
            events = es.get_unprocessed_or_failed_events("USER_SYNC_EVENT", limit=50)
            if not events and done:
                break
            for event in events:
                if es.mark_event_processing(event["id"]) is None:
                    continue  # the other processor has it
                with conn.cursor() as cur:
                    cur.execute(
                        f'insert into "{schema}".handled (event_id, processor) values (%s, %s)',
                        (event["id"], name),
                    )
                es.mark_event_processed(event["id"], 200, "ok")
                handled += 1
        results.put({"role": "processor", "handled": handled})
    except Exception as exc:
        results.put({"role": "processor", "error": repr(exc)})
    finally:
        conn.close()


def test_four_writers_and_two_processors_process_every_event_exactly_once(event_schema, pg_conn):
    es.ensure_event_store(pg_conn)
    with pg_conn.cursor() as cur:
        cur.execute(f'create table "{event_schema}".handled (event_id bigint, processor text)')
    ctx = multiprocessing.get_context("spawn")
    barrier, writers_done, results = ctx.Barrier(WRITERS + 2), ctx.Event(), ctx.Queue()
    writers = [
        ctx.Process(target=_slow_writer, args=(k * OVERLAP_STEP, barrier, results))
        for k in range(WRITERS)
    ]
    processors = [
        ctx.Process(target=_processor, args=(f"p{k}", event_schema, barrier, writers_done, results))
        for k in range(2)
    ]
    for p in writers + processors:
        p.start()
    outcomes = [results.get(timeout=180) for _ in writers]
    writers_done.set()
    outcomes += [results.get(timeout=180) for _ in processors]
    for p in writers + processors:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert not [o for o in outcomes if "error" in o], outcomes

    assert sum(o["created"] for o in outcomes if o["role"] == "writer") == DISTINCT_EVENTS
    handled = [o["handled"] for o in outcomes if o["role"] == "processor"]
    assert sum(handled) == DISTINCT_EVENTS
    print(f"events handled per processor: {handled}")
    assert _count(pg_conn, event_schema) == DISTINCT_EVENTS
    assert _count(pg_conn, event_schema, "status = 'processed' and attempts = 1") == DISTINCT_EVENTS
    with pg_conn.cursor() as cur:
        cur.execute(f'select count(*), count(distinct event_id) from "{event_schema}".handled')
        assert cur.fetchone() == (DISTINCT_EVENTS, DISTINCT_EVENTS)


def _crash_while_processing(event_id: int) -> None:
    """A processor that claims an event and dies before recording any outcome."""
    import os

    assert es.mark_event_processing(event_id) is not None
    os._exit(1)


def test_event_left_processing_by_a_crashed_processor_is_claimed_after_the_lease(
    event_schema, monkeypatch
):
    import time

    monkeypatch.setenv("EVENT_STORE_LEASE_SECONDS", "1.5")
    event_id = es.write_event("USER_SYNC_EVENT", {"user_id": 1}).event_id
    ctx = multiprocessing.get_context("spawn")
    crashed = ctx.Process(target=_crash_while_processing, args=(event_id,))
    crashed.start()
    crashed.join(timeout=60)
    assert crashed.exitcode == 1
    claimed_at = es.get_event(event_id)["updated_at"]
    assert es.get_event(event_id)["status"] == "processing"

    # Within the lease the event is still the crashed processor's.
    assert es.get_unprocessed_or_failed_events("USER_SYNC_EVENT") == []
    assert es.mark_event_processing(event_id) is None

    # Past the lease (measured on the database's clock) it is handed out and claimed again.
    deadline = time.monotonic() + 10
    while not es.get_unprocessed_or_failed_events("USER_SYNC_EVENT"):
        assert time.monotonic() < deadline, "the expired lease was never taken back"
        time.sleep(0.2)
    reclaimed = es.mark_event_processing(event_id)
    assert reclaimed is not None and reclaimed["attempts"] == 2
    assert (reclaimed["updated_at"] - claimed_at).total_seconds() >= 1.5
    assert es.mark_event_processing(event_id) is None  # a second processor does not get it
    assert es.mark_event_processed(event_id)["status"] == "processed"
    assert es.get_unprocessed_or_failed_events("USER_SYNC_EVENT") == []
