"""Which errors are transient, asked of real failures against local servers: a 5xx, a refused,
reset or timed-out connection may be retried; a 4xx or the platform's own errors may not."""

from __future__ import annotations

import socket
import struct
import threading
from http.server import ThreadingHTTPServer

import pytest
import requests

from dataplatform.local.sample_api.server import JsonRequestHandler
from pyairbyte.errors import ConnectorConfigError, SyncLimitExceededError
from pyairbyte.utils.transient_errors import is_transient_error, is_transient_message


class StatusHandler(JsonRequestHandler):
    def do_GET(self):
        self._send(int(self.path.strip("/")), {"message": "on purpose"})


@pytest.fixture
def status_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StatusHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _error_of(call) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("expected the call to fail")


@pytest.mark.parametrize(("status", "transient"), [(500, True), (503, True), (429, True)])
def test_server_errors_and_rate_limits_are_transient(status_server, status, transient):
    exc = _error_of(lambda: requests.get(f"{status_server}/{status}").raise_for_status())
    assert is_transient_error(exc) is transient


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_not(status_server, status):
    exc = _error_of(lambda: requests.get(f"{status_server}/{status}").raise_for_status())
    assert is_transient_error(exc) is False


def test_a_refused_connection_is_transient():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exc = _error_of(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=5))
    assert is_transient_error(exc)


def test_a_reset_connection_is_transient():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def reset_each():
        conn, _ = listener.accept()
        conn.recv(1024)
        # SO_LINGER 0: close() sends RST, which the client sees as "connection reset by peer".
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    threading.Thread(target=reset_each, daemon=True).start()
    port = listener.getsockname()[1]
    exc = _error_of(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=5))
    listener.close()
    assert is_transient_error(exc), repr(exc)


def test_a_read_timeout_is_transient():
    listener = socket.socket()  # accepts (the kernel's backlog) and never answers
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    exc = _error_of(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=0.5))
    listener.close()
    assert is_transient_error(exc)


@pytest.mark.parametrize(
    ("text", "transient"),
    [
        # What the CDK writes when a declarative stream gets an HTTP error: the last one counts.
        ("Request failed. HTTP Status Code: 500. Retrying...\nHTTP Status Code: 503.", True),
        ("HTTP Status Code: 500 ...\nHTTP Status Code: 401. Unauthorized", False),
        ("Max retries exceeded with url: /products (Caused by NewConnectionError(...))", True),
        ("server closed the connection unexpectedly", True),
        ("unknown stream(s) orders", None),
    ],
)
def test_what_the_text_says(text, transient):
    assert is_transient_message(text) is transient


def test_the_platforms_own_errors_are_never_transient():
    config = ConnectorConfigError("/x.yaml", "config.url", "connection refused in a value", "fix")
    limit = SyncLimitExceededError("timed out", limit="max_seconds", value=1, setting="X")
    assert not is_transient_error(config) and not is_transient_error(limit)
    assert not is_transient_error(ValueError("a bug"))
