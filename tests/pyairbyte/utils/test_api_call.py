"""api_call against a local HTTP server: the outcome of each call is recorded on its event."""

from __future__ import annotations

import json

import pytest

from pyairbyte.errors import ApiCallError, EventNotFoundError
from pyairbyte.utils import event_store as es
from pyairbyte.utils.api_call import ApiCallResult, call_api_for_event_processing


def test_success_is_recorded_and_not_repeated(event_schema, http_api):
    event_id = es.write_event("USER_SYNC_EVENT", {"user_id": 7}).event_id

    result = call_api_for_event_processing(event_id, "post", f"{http_api.url}/ok", {"user_id": 7})

    assert result == ApiCallResult(
        event_id=event_id, status_code=201, response='{"accepted": true}', attempts=1
    )
    assert http_api.received[0]["method"] == "POST"
    assert json.loads(http_api.received[0]["body"]) == {"user_id": 7}
    event = es.get_event(event_id)
    assert (event["status"], event["response_status_code"], event["response_body"]) == (
        "processed",
        201,
        '{"accepted": true}',
    )
    assert es.get_unprocessed_or_failed_events("USER_SYNC_EVENT") == []

    again = call_api_for_event_processing(event_id, "POST", f"{http_api.url}/ok", {"user_id": 7})
    assert again.skipped
    assert again.reason == f"event {event_id} is processed, not pending or failed"
    assert len(http_api.received) == 1  # the API was not called twice


def test_failure_is_recorded_with_truncated_response_then_retry_succeeds(
    event_schema, http_api, monkeypatch
):
    monkeypatch.setenv("API_CALL_RESPONSE_MAX_CHARS", "100")
    http_api.routes["/users"] = (500, "E" * 1000)
    event_id = es.write_event("USER_SYNC_EVENT", {"user_id": 8}).event_id

    with pytest.raises(ApiCallError) as failure:
        call_api_for_event_processing(event_id, "PUT", f"{http_api.url}/users", "raw body")

    result = failure.value
    assert (result.event_id, result.status_code, result.attempts) == (event_id, 500, 1)
    assert result.response == "E" * 100 + "... [truncated]"
    assert str(result) == f"HTTP 500 from PUT {http_api.url}/users: " + result.response
    assert http_api.received[0]["body"] == "raw body"
    event = es.get_event(event_id)
    assert (event["status"], event["attempts"], event["response_status_code"]) == ("failed", 1, 500)
    assert event["last_error"].startswith("HTTP 500 from PUT")
    assert [e["id"] for e in es.get_unprocessed_or_failed_events("USER_SYNC_EVENT")] == [event_id]

    # The handler's next run retries the failed event; now the API accepts it.
    http_api.routes["/users"] = (200, "ok")
    retry = call_api_for_event_processing(event_id, "PUT", f"{http_api.url}/users", "raw body")
    assert (retry.skipped, retry.attempts, retry.status_code) == (False, 2, 200)
    event = es.get_event(event_id)
    assert (event["status"], event["last_error"], event["response_body"]) == (
        "processed",
        None,
        "ok",
    )


def test_timeout_and_unreachable_are_recorded_as_failures(event_schema, http_api):
    http_api.delay_seconds = 1.0
    slow = es.write_event("E", {"n": 1}).event_id
    with pytest.raises(ApiCallError) as timed_out:
        call_api_for_event_processing(slow, "GET", f"{http_api.url}/ok", timeout=0.2)
    assert timed_out.value.status_code is None
    assert (
        str(timed_out.value)
        == f"GET {http_api.url}/ok timed out after 0.2 s (API_CALL_TIMEOUT_SECONDS)"
    )
    assert es.get_event(slow)["status"] == "failed"

    down = es.write_event("E", {"n": 2}).event_id
    with pytest.raises(ApiCallError) as unreachable:
        call_api_for_event_processing(down, "POST", "http://127.0.0.1:9/nothing", {})
    message = str(unreachable.value)
    assert message.startswith("POST http://127.0.0.1:9/nothing failed: ConnectionError")
    assert es.get_event(down)["last_error"] == message


def test_unknown_event_and_bad_method(event_schema, http_api):
    with pytest.raises(EventNotFoundError, match="event 4242 does not exist"):
        call_api_for_event_processing(4242, "POST", f"{http_api.url}/ok", {})
    with pytest.raises(ValueError, match="method 'FETCH' is not one of"):
        call_api_for_event_processing(1, "fetch", f"{http_api.url}/ok", {})
    assert http_api.received == []
