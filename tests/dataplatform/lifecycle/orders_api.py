"""A local shop API for the lifecycle tests, deliberately unlike the sample products API.

- Every request needs the header `X-Api-Key` (401 otherwise).
- GET /v2/orders?pageSize=&cursor=   -> {"data": [...], "pagination": {"nextCursor": str|null}}
  (opaque cursor pagination)
- GET /v2/customers?page=&per_page=  -> {"customers": [...], "page": n, "totalPages": m}
  (page-number pagination)
Records have camelCase keys, a nested object with a date-time (`shipping.shippedAt`,
`loyalty.memberSince`), a nested object inside it, and arrays (`lineItems`, `tags`).
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from dataplatform.local.sample_api.server import JsonRequestHandler

ORDER_COUNT = 23
CUSTOMER_COUNT = 9
CARRIERS = ("DHL", "PostNord", "UPS")


def make_orders() -> list[dict]:
    orders = []
    for i in range(1, ORDER_COUNT + 1):
        shipped = i % 4 != 0  # every fourth order has not shipped yet
        orders.append(
            {
                "orderId": i,
                "customerId": 100 + (i % CUSTOMER_COUNT) + 1,
                "orderStatus": "shipped" if shipped else "pending",
                "totalAmount": round(9.95 * i + 0.5, 2),
                "itemCount": 1 + i % 3,
                "isGift": i % 5 == 0,
                "placedAt": f"2024-03-{i:02d}T10:15:00+02:00",
                "shipping": {
                    "carrierName": CARRIERS[i % 3],
                    "trackingCode": f"TRK-{i:05d}",
                    "shippedAt": f"2024-03-{i:02d}T18:45:30Z" if shipped else None,
                    "address": {"city": "Uppsala", "postCode": f"75{i:03d}"},
                },
                "lineItems": [{"sku": f"SKU-{i}-{n}", "qty": n + 1} for n in range(1 + i % 3)],
                "tags": ["gift"] if i % 5 == 0 else [],
            }
        )
    return orders


def make_customers() -> list[dict]:
    return [
        {
            "customerId": 100 + i,
            "fullName": f"Customer {i}",
            "emailAddress": f"customer{i}@example.com",
            "signupDate": f"2023-0{1 + i % 9}-15",
            "loyalty": {
                "tierName": ("bronze", "silver", "gold")[i % 3],
                "memberSince": f"2022-05-{i:02d}T00:00:00Z",
            },
        }
        for i in range(1, CUSTOMER_COUNT + 1)
    ]


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(cursor: str) -> int:
    return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])


class OrdersApi:
    def __init__(self, api_key: str, host: str = "127.0.0.1"):
        self.api_key = api_key
        self.orders = make_orders()
        self.customers = make_customers()
        self.requests: list[str] = []
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OrdersApi:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        api = self

        class Handler(JsonRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                api.requests.append(self.path)
                if self.headers.get("X-Api-Key") != api.api_key:
                    return self._send(401, {"error": "missing or wrong X-Api-Key"})
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/v2/orders":
                    size = int(query.get("pageSize", 10))
                    start = _offset(query["cursor"]) if query.get("cursor") else 0
                    page = api.orders[start : start + size]
                    more = start + size < len(api.orders)
                    return self._send(
                        200,
                        {
                            "data": page,
                            "pagination": {"nextCursor": _cursor(start + size) if more else None},
                        },
                    )
                if url.path == "/v2/customers":
                    page_no, per_page = int(query.get("page", 1)), int(query.get("per_page", 5))
                    start = (page_no - 1) * per_page
                    total_pages = -(-len(api.customers) // per_page)
                    return self._send(
                        200,
                        {
                            "customers": api.customers[start : start + per_page],
                            "page": page_no,
                            "totalPages": total_pages,
                        },
                    )
                return self._send(404, {"error": f"no route {url.path}"})

        return Handler
