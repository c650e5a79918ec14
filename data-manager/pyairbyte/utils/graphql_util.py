"""Queries against a Hasura-style GraphQL endpoint, with auth, timeouts and retries.

`query_graphql_api(query, variables=None, ...)` returns the response JSON ({"data": ...}).

- Auth: the admin secret is sent as `x-hasura-admin-secret`; otherwise a bearer token as
  `Authorization: Bearer ...`; neither if both are empty.
- Retries with exponential backoff on connection errors (including connect timeouts) and on
  HTTP 5xx. A read timeout is not retried: the server may already have applied a mutation.
- Raises `GraphQLQueryError` when a 200 response carries GraphQL `errors`,
  `GraphQLTimeoutError` on a read timeout, and `GraphQLRequestError` for other HTTP failures
  (4xx, 5xx after the last retry, unreachable server, a body that is not JSON).

| env var                      | default                         |
|------------------------------|---------------------------------|
| HASURA_GRAPHQL_ENDPOINT      | http://localhost:8080/v1/graphql |
| HASURA_GRAPHQL_ADMIN_SECRET  | (empty: not sent)               |
| HASURA_GRAPHQL_BEARER_TOKEN  | (empty: not sent)               |
| GRAPHQL_TIMEOUT_SECONDS      | 30                              |
| GRAPHQL_MAX_RETRIES          | 3 (retries after the first try) |
| GRAPHQL_BACKOFF_SECONDS      | 0.5 (doubles per retry)         |
"""

from __future__ import annotations

import os
import time

import requests

_BODY_EXCERPT = 300


class GraphQLUtilError(Exception):
    """Base class of the errors raised by query_graphql_api."""


class GraphQLRequestError(GraphQLUtilError):
    """The HTTP request failed (unreachable, 4xx, 5xx after retries, or not JSON)."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class GraphQLTimeoutError(GraphQLRequestError):
    """No response within the timeout."""


class GraphQLQueryError(GraphQLUtilError):
    """The server answered, but the response has GraphQL `errors`."""

    def __init__(self, errors: list, data=None):
        messages = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
        )
        super().__init__(f"GraphQL query failed: {messages}")
        self.errors = errors
        self.data = data


def _env_number(name: str, default: float, kind=float):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"env {name}={value!r} is not a number; set e.g. {default}") from None


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "..."


def query_graphql_api(
    query: str,
    variables: dict | None = None,
    *,
    operation_name: str | None = None,
    endpoint: str | None = None,
    admin_secret: str | None = None,
    bearer_token: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    backoff_seconds: float | None = None,
    headers: dict | None = None,
) -> dict:
    """POST a GraphQL query; returns the response JSON. Arguments left None come from env."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query_graphql_api: query must be a non-empty GraphQL document string")
    endpoint = endpoint or os.environ.get(
        "HASURA_GRAPHQL_ENDPOINT", "http://localhost:8080/v1/graphql"
    )
    if admin_secret is None:
        admin_secret = os.environ.get("HASURA_GRAPHQL_ADMIN_SECRET", "")
    if bearer_token is None:
        bearer_token = os.environ.get("HASURA_GRAPHQL_BEARER_TOKEN", "")
    timeout = timeout if timeout is not None else _env_number("GRAPHQL_TIMEOUT_SECONDS", 30.0)
    if max_retries is None:
        max_retries = _env_number("GRAPHQL_MAX_RETRIES", 3, int)
    if backoff_seconds is None:
        backoff_seconds = _env_number("GRAPHQL_BACKOFF_SECONDS", 0.5)

    request_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if admin_secret:
        request_headers["x-hasura-admin-secret"] = admin_secret
    elif bearer_token:
        request_headers["Authorization"] = f"Bearer {bearer_token}"
    request_headers.update(headers or {})
    payload: dict = {"query": query, "variables": variables or {}}
    if operation_name:
        payload["operationName"] = operation_name

    attempt = 0
    while True:
        try:
            response = requests.post(
                endpoint, json=payload, headers=request_headers, timeout=timeout
            )
        except requests.exceptions.ReadTimeout:
            raise GraphQLTimeoutError(
                f"GraphQL endpoint {endpoint} did not respond within {timeout} s "
                "(GRAPHQL_TIMEOUT_SECONDS); not retried, since a mutation may have been applied"
            ) from None
        except requests.exceptions.ConnectionError as exc:  # includes ConnectTimeout
            failure, status = f"cannot reach GraphQL endpoint {endpoint}: {exc}", None
        else:
            if response.status_code < 500:
                return _parse(response, endpoint)
            failure = (
                f"GraphQL endpoint {endpoint} answered HTTP {response.status_code}: "
                f"{_excerpt(response.text)}"
            )
            status = response.status_code
        if attempt >= max_retries:
            raise GraphQLRequestError(f"{failure} (after {attempt + 1} attempts)", status)
        time.sleep(backoff_seconds * 2**attempt)
        attempt += 1


def _parse(response: requests.Response, endpoint: str) -> dict:
    if response.status_code >= 400:
        raise GraphQLRequestError(
            f"GraphQL endpoint {endpoint} answered HTTP {response.status_code}: "
            f"{_excerpt(response.text)}",
            response.status_code,
        )
    try:
        body = response.json()
    except ValueError:
        raise GraphQLRequestError(
            f"GraphQL endpoint {endpoint} answered HTTP {response.status_code} with a body that "
            f"is not JSON: {_excerpt(response.text)}",
            response.status_code,
        ) from None
    if not isinstance(body, dict):
        raise GraphQLRequestError(
            f"GraphQL endpoint {endpoint} answered with JSON that is not an object: "
            f"{_excerpt(response.text)}",
            response.status_code,
        )
    if body.get("errors"):
        raise GraphQLQueryError(body["errors"], body.get("data"))
    return body
