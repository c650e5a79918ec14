from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURE = Path(__file__).with_name("products.json")
DEFAULT_LIMIT = 30  # dummyjson's default page size
MAX_LIMIT = 100


def load_fixture_products() -> list[dict]:
    return json.loads(FIXTURE.read_text())


class JsonRequestHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers JSON (the local APIs of demos and tests)."""

    def log_message(self, *args):  # keep test and demo output quiet
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SampleProductsApi:
    """GET /products?limit=&skip= -> {"products": [...], "total", "skip", "limit"}.

    `fail_with_status` makes /products requests answer with that HTTP status and a JSON error
    body, to exercise a failing source; with `fail_from_skip` only pages from that offset on
    fail, so a sync passes its check and then fails mid-stream; with `fail_times` only that many
    requests fail, and the next ones are answered (a source that recovers). `delay_seconds`
    makes every /products answer wait that long, so a test can act while a sync is in progress. With
    `api_key` set, /products answers 401 unless the request's x-api-key header matches it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, products: list[dict] | None = None):
        self.products = products if products is not None else load_fixture_products()
        self.fail_with_status: int | None = None
        self.fail_from_skip = 0
        self.fail_times: int | None = None  # None: every matching request fails
        self.delay_seconds = 0.0
        self.api_key: str | None = None  # when set, /products needs it as the x-api-key header
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _handler_class(self):
        api = self

        class Handler(JsonRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                api.requests.append(self.path)
                if url.path == "/health":
                    return self._send(200, {"status": "ok"})
                if url.path != "/products":
                    return self._send(404, {"message": f"Path '{url.path}' not found"})
                if api.api_key and self.headers.get("x-api-key") != api.api_key:
                    return self._send(401, {"message": "missing or wrong x-api-key"})
                if api.delay_seconds:
                    time.sleep(api.delay_seconds)
                query = parse_qs(url.query)
                try:
                    limit = int(query.get("limit", [DEFAULT_LIMIT])[0])
                    skip = int(query.get("skip", [0])[0])
                except ValueError:
                    return self._send(400, {"message": "limit and skip must be integers"})
                if api.fail_with_status and skip >= api.fail_from_skip and api.fail_times != 0:
                    if api.fail_times is not None:
                        api.fail_times -= 1
                    return self._send(
                        api.fail_with_status,
                        {"message": f"sample API failing on purpose ({api.fail_with_status})"},
                    )
                limit = min(max(limit, 0), MAX_LIMIT) or DEFAULT_LIMIT
                page = api.products[skip : skip + limit]
                return self._send(
                    200,
                    {"products": page, "total": len(api.products), "skip": skip, "limit": limit},
                )

        return Handler

    def start(self) -> SampleProductsApi:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
