"""Which sync failures are transient: worth a retry because the same sync may pass a moment later.

Transient: an HTTP 5xx or 429 from the source, a connection reset, refused or aborted, a timeout,
and a lost connection to the cache's PostgreSQL. Everything else fails at once: a 4xx (the
credentials or the request are wrong), a bad connector YAML, an unknown stream, a sync limit,
a connector that crashes at start-up. Retrying those only delays the error the user must fix.

The exception itself rarely says it: a declarative source runs the CDK, which turns an HTTP
error into an Airbyte trace message, and PyAirbyte wraps that in its own exception. So the
predicate looks at the whole chain, by type where one survives (`ConnectionResetError`,
`TimeoutError`, requests' and psycopg2's by name, so neither is imported) and by the text the
CDK and requests write ("HTTP Status Code: 503", "Connection refused", "Read timed out").
"""

from __future__ import annotations

import re

from pyairbyte.errors import PyAirbyteUtilsError

__all__ = ["is_transient_error", "is_transient_message"]

_TRANSIENT_TYPES = (ConnectionError, TimeoutError)  # reset, refused, aborted, broken pipe
# Types of libraries the utils do not import (requests, urllib3, psycopg2, http.client).
_TRANSIENT_TYPE_NAMES = frozenset(
    {
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ProtocolError",
        "RemoteDisconnected",
        "IncompleteRead",
        "ChunkedEncodingError",
        "OperationalError",  # psycopg2: the cache database went away
    }
)
_HTTP_STATUS = re.compile(
    r"(?:HTTP Status Code|status[ _]code|HTTP(?:/\d(?:\.\d)?)?|Response code)[\s:=]*(\d{3})\b"
    r"|\b(\d{3}) (?:Server Error|Client Error|Internal Server Error|Bad Gateway|"
    r"Service Unavailable|Gateway Time-?out|Too Many Requests)",
    re.IGNORECASE,
)
_TRANSIENT_TEXT = re.compile(
    r"connection (?:reset|refused|aborted)|reset by peer|broken pipe|timed out|"
    r"RemoteDisconnected|Max retries exceeded|Temporary failure in name resolution|"
    r"server closed the connection unexpectedly",
    re.IGNORECASE,
)


def _transient_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def is_transient_message(text: str) -> bool | None:
    """What an error's text says: True (a 5xx, 429, a reset or refused connection, a timeout),
    False (an HTTP 4xx), or None (nothing either way)."""
    statuses = [int(a or b) for a, b in _HTTP_STATUS.findall(text)]
    statuses = [s for s in statuses if 400 <= s <= 599]
    if statuses:
        # The last status is the one that ended the read (the CDK logs its earlier retries).
        return _transient_status(statuses[-1])
    if _TRANSIENT_TEXT.search(text):
        return True
    return None


def _chain(exc: BaseException):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "original_exception", None) or exc.__cause__ or exc.__context__


def is_transient_error(exc: BaseException, text: str = "") -> bool:
    """Whether a sync that failed with `exc` (and the error `text` reported for it) may pass if
    it runs again unchanged. The platform's own errors (`pyairbyte.errors`) never are: each
    names something to fix."""
    chain = list(_chain(exc))
    if isinstance(exc, PyAirbyteUtilsError):
        return False
    said = is_transient_message("\n".join([text, *(_text_of(e) for e in chain)]))
    if said is not None:
        return said
    return any(
        isinstance(e, _TRANSIENT_TYPES) or type(e).__name__ in _TRANSIENT_TYPE_NAMES for e in chain
    )


def _text_of(exc: BaseException) -> str:
    parts = [str(exc)]
    for attr in ("log_text", "context", "message", "internal_message"):
        value = getattr(exc, attr, None)
        if value:
            parts.append(str(value))
    return "\n".join(parts)
