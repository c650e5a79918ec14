"""HTTP calls made on behalf of an event, with the outcome recorded on the event.

`call_api_for_event_processing(event_id, method, url, body)`:
1. claims the event in the event store (status processing, attempts + 1); an event that is
   already processed or being processed by another handler is skipped, not called twice;
2. makes the HTTP call (a dict/list body is sent as JSON, a str/bytes body as is);
3. records the status code and the response text (truncated), and marks the event processed
   on 2xx, failed otherwise (HTTP error, timeout, unreachable), with the error text.

Returns an `ApiCallResult` (`skipped=True`, with the reason, for an event it did not call).
A failed call raises `pyairbyte.errors.ApiCallError` after the failure is recorded on the event,
so a handler catches it and goes on with the next event; the error carries event_id,
status_code, response and attempts. An event id that does not exist raises
`EventNotFoundError` (a LookupError), and a bad method ValueError.

Arguments left None come from env, read at each call (`api_call_settings()`):

| env var                    | default | meaning                                      |
|----------------------------|---------|----------------------------------------------|
| API_CALL_TIMEOUT_SECONDS   | 30      | connect and read timeout per call            |
| API_CALL_RESPONSE_MAX_CHARS| 2000    | response text kept on the event              |
(plus the event store's EVENT_STORE_* and POSTGRES_* settings)
"""

from __future__ import annotations

from dataclasses import dataclass

import requests
from pydantic_settings import SettingsConfigDict

from pyairbyte import settings
from pyairbyte.errors import ApiCallError, EventNotFoundError
from pyairbyte.utils import event_store

_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


class ApiCallSettings(settings.EnvSettings):
    model_config = SettingsConfigDict(env_prefix="API_CALL_")

    timeout_seconds: settings.Seconds = 30.0
    response_max_chars: settings.PositiveInt = 2000


def api_call_settings() -> ApiCallSettings:
    return settings.load(ApiCallSettings)


@dataclass(frozen=True)
class ApiCallResult:
    event_id: int
    status_code: int | None
    response: str | None
    attempts: int
    skipped: bool = False
    reason: str | None = None  # why a skipped event was not called


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "... [truncated]"


def call_api_for_event_processing(
    event_id: int,
    method: str,
    url: str,
    body=None,
    *,
    headers: dict | None = None,
    timeout: float | None = None,
    response_max_chars: int | None = None,
) -> ApiCallResult:
    """Call `method url` with `body` for event `event_id` and record the outcome on the event."""
    method = (method or "").upper()
    if method not in _METHODS:
        raise ValueError(
            f"call_api_for_event_processing: method {method!r} is not one of {sorted(_METHODS)}"
        )
    defaults = api_call_settings()
    timeout = defaults.timeout_seconds if timeout is None else timeout
    max_chars = response_max_chars or defaults.response_max_chars

    claimed = event_store.mark_event_processing(event_id)
    if claimed is None:
        current = event_store.get_event(event_id)
        if current is None:
            raise EventNotFoundError(f"event {event_id} does not exist in the event store")
        return ApiCallResult(
            event_id=event_id,
            status_code=current["response_status_code"],
            response=current["response_body"],
            attempts=current["attempts"],
            skipped=True,
            reason=f"event {event_id} is {current['status']}, not pending or failed",
        )

    kwargs: dict = {"headers": headers or {}, "timeout": timeout}
    if isinstance(body, str | bytes):
        kwargs["data"] = body
    elif body is not None:
        kwargs["json"] = body
    status_code = response_text = None
    try:
        response = requests.request(method, url, **kwargs)
        status_code = response.status_code
        response_text = _truncate(response.text, max_chars)
        error = None if response.ok else f"HTTP {status_code} from {method} {url}: {response_text}"
    except requests.exceptions.Timeout:
        error = f"{method} {url} timed out after {timeout} s (API_CALL_TIMEOUT_SECONDS)"
    except requests.exceptions.RequestException as exc:
        error = f"{method} {url} failed: {type(exc).__name__}: {exc}"

    if error is None:
        event = event_store.mark_event_processed(event_id, status_code, response_text)
        return ApiCallResult(event_id, status_code, response_text, event["attempts"])
    event = event_store.mark_event_failed(event_id, error, status_code, response_text)
    raise ApiCallError(
        event["last_error"],
        event_id=event_id,
        status_code=status_code,
        response=response_text,
        attempts=event["attempts"],
    )
