"""Queries against a Hasura-style GraphQL endpoint, with auth, timeouts and retries.

`query_graphql_api(query, variables=None, ...)` returns the response JSON ({"data": ...}).

- Auth: the admin secret is sent as `x-hasura-admin-secret`; otherwise a bearer token as
  `Authorization: Bearer ...`; neither if both are empty.
- Retries go through a `requests.Session` with urllib3's `Retry` mounted on it: connection
  errors (including connect timeouts) and HTTP 5xx are retried with exponential backoff
  (urllib3's: no wait before the first retry, then backoff, 2 x backoff, ...). A read timeout or
  a connection dropped mid-response is not retried: the server may already have applied a
  mutation.
- Raises `GraphQLQueryError` when a 200 response carries GraphQL `errors`,
  `GraphQLTimeoutError` on a read timeout, and `GraphQLRequestError` for other HTTP failures
  (4xx, 5xx after the last retry, unreachable server, a body that is not JSON); all are
  defined in `pyairbyte.errors`.

Arguments left None come from env, read at each call (`graphql_settings()`):

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

import requests
from pydantic import Field
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pyairbyte import settings
from pyairbyte.errors import (
    GraphQLQueryError,
    GraphQLRequestError,
    GraphQLTimeoutError,
    GraphQLUtilError,
)

__all__ = [
    "GraphQLQueryError",
    "GraphQLRequestError",
    "GraphQLTimeoutError",
    "GraphQLUtilError",
    "graphql_settings",
    "query_graphql_api",
    "retrying_session",
]


class GraphQLSettings(settings.EnvSettings):
    endpoint: str = Field(
        "http://localhost:8080/v1/graphql", validation_alias="HASURA_GRAPHQL_ENDPOINT"
    )
    admin_secret: str = Field("", validation_alias="HASURA_GRAPHQL_ADMIN_SECRET", repr=False)
    bearer_token: str = Field("", validation_alias="HASURA_GRAPHQL_BEARER_TOKEN", repr=False)
    timeout_seconds: settings.Seconds = Field(30.0, validation_alias="GRAPHQL_TIMEOUT_SECONDS")
    max_retries: settings.Count = Field(3, validation_alias="GRAPHQL_MAX_RETRIES")
    backoff_seconds: settings.NonNegativeSeconds = Field(
        0.5, validation_alias="GRAPHQL_BACKOFF_SECONDS"
    )


def graphql_settings() -> GraphQLSettings:
    return settings.load(GraphQLSettings)


_BODY_EXCERPT = 300


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "..."


def retrying_session(max_retries: int, backoff_seconds: float) -> requests.Session:
    """A session that retries connection failures and 5xx answers, but never a read error."""
    retry = Retry(
        total=max_retries,
        connect=max_retries,
        status=max_retries,
        read=False,  # re-raise a read timeout at once instead of retrying it
        other=0,
        status_forcelist=range(500, 600),
        allowed_methods=None,  # GraphQL is always POST
        backoff_factor=backoff_seconds,
        raise_on_status=False,  # hand back the last 5xx, so its status and body are reported
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _attempts(response: requests.Response) -> int:
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) + 1 if retries is not None else 1


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
    defaults = graphql_settings()
    endpoint = endpoint or defaults.endpoint
    admin_secret = defaults.admin_secret if admin_secret is None else admin_secret
    bearer_token = defaults.bearer_token if bearer_token is None else bearer_token
    timeout = defaults.timeout_seconds if timeout is None else timeout
    max_retries = defaults.max_retries if max_retries is None else max_retries
    backoff_seconds = defaults.backoff_seconds if backoff_seconds is None else backoff_seconds

    request_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if admin_secret:
        request_headers["x-hasura-admin-secret"] = admin_secret
    elif bearer_token:
        request_headers["Authorization"] = f"Bearer {bearer_token}"
    request_headers.update(headers or {})
    payload: dict = {"query": query, "variables": variables or {}}
    if operation_name:
        payload["operationName"] = operation_name

    with retrying_session(max_retries, backoff_seconds) as session:
        try:
            response = session.post(
                endpoint, json=payload, headers=request_headers, timeout=timeout
            )
        except requests.exceptions.ReadTimeout:
            raise GraphQLTimeoutError(
                f"GraphQL endpoint {endpoint} did not respond within {timeout} s "
                "(GRAPHQL_TIMEOUT_SECONDS); not retried, since a mutation may have been applied"
            ) from None
        except requests.exceptions.ConnectionError as exc:  # includes ConnectTimeout
            raise GraphQLRequestError(
                f"cannot reach GraphQL endpoint {endpoint}: {exc} "
                f"(after {max_retries + 1} attempts)"
            ) from None
        return _parse(response, endpoint)


def _parse(response: requests.Response, endpoint: str) -> dict:
    if response.status_code >= 400:
        retried = f" (after {_attempts(response)} attempts)" if response.status_code >= 500 else ""
        raise GraphQLRequestError(
            f"GraphQL endpoint {endpoint} answered HTTP {response.status_code}: "
            f"{_excerpt(response.text)}{retried}",
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
