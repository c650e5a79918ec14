"""graphql_util against a real GraphQL server started on 127.0.0.1 (see conftest)."""

from __future__ import annotations

import pytest

from pyairbyte.utils.graphql_util import (
    GraphQLQueryError,
    GraphQLRequestError,
    GraphQLTimeoutError,
    query_graphql_api,
)

USER_QUERY = """
query ($id: Int!) { user(id: $id) { id first_name last_name } }
"""


@pytest.fixture
def env(graphql_server, monkeypatch):
    monkeypatch.setenv("HASURA_GRAPHQL_ENDPOINT", graphql_server.url)
    monkeypatch.setenv("HASURA_GRAPHQL_ADMIN_SECRET", "s3cret")
    monkeypatch.delenv("HASURA_GRAPHQL_BEARER_TOKEN", raising=False)
    monkeypatch.setenv("GRAPHQL_BACKOFF_SECONDS", "0.05")
    return graphql_server


def test_query_with_variables(env):
    result = query_graphql_api(USER_QUERY, {"id": 3})
    assert result == {"data": {"user": {"id": 3, "first_name": "Maja", "last_name": "Öberg"}}}
    active = query_graphql_api("query ($a: Boolean) { users(active: $a) { id } }", {"a": True})
    assert active["data"]["users"] == [{"id": 1}, {"id": 3}]
    assert env.requests[0]["headers"]["x-hasura-admin-secret"] == "s3cret"


def test_auth_header_is_required_and_checked(env, monkeypatch):
    monkeypatch.setenv("HASURA_GRAPHQL_ADMIN_SECRET", "wrong")
    with pytest.raises(GraphQLRequestError, match="answered HTTP 401: .*invalid") as err:
        query_graphql_api(USER_QUERY, {"id": 1})
    assert err.value.status_code == 401
    assert len(env.requests) == 1  # a 4xx is not retried

    # Bearer token instead of the admin secret.
    env.admin_secret, env.bearer_token = None, "tok-123"
    monkeypatch.setenv("HASURA_GRAPHQL_ADMIN_SECRET", "")
    monkeypatch.setenv("HASURA_GRAPHQL_BEARER_TOKEN", "tok-123")
    assert query_graphql_api(USER_QUERY, {"id": 2})["data"]["user"]["first_name"] == "Nils"
    assert env.requests[-1]["headers"]["Authorization"] == "Bearer tok-123"
    assert "x-hasura-admin-secret" not in env.requests[-1]["headers"]


def test_graphql_errors_in_a_200_response_raise(env):
    with pytest.raises(GraphQLQueryError, match="Cannot query field 'email' on type 'User'") as err:
        query_graphql_api("query { users { id email } }")
    assert err.value.errors[0]["message"].startswith("Cannot query field 'email'")
    with pytest.raises(GraphQLQueryError, match=r"Variable '\$id' of required type 'Int!'"):
        query_graphql_api(USER_QUERY)  # missing variable


def test_503_then_success_is_retried(env):
    env.fail_statuses = [503, 502]
    result = query_graphql_api(USER_QUERY, {"id": 1})
    assert result["data"]["user"]["first_name"] == "Åsa"
    assert len(env.requests) == 3


def test_5xx_beyond_the_retries_raises_with_the_status(env):
    env.fail_statuses = [503] * 5
    with pytest.raises(GraphQLRequestError, match=r"HTTP 503: .*\(after 3 attempts\)") as err:
        query_graphql_api(USER_QUERY, {"id": 1}, max_retries=2)
    assert err.value.status_code == 503
    assert len(env.requests) == 3


def test_timeout(env):
    env.delay_seconds = 1.5
    with pytest.raises(GraphQLTimeoutError, match=r"did not respond within 0.3 s"):
        query_graphql_api(USER_QUERY, {"id": 1}, timeout=0.3)
    assert len(env.requests) == 1


def test_unreachable_endpoint_is_retried_then_raises(env, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HASURA_GRAPHQL_ENDPOINT", f"http://127.0.0.1:{port}/v1/graphql")
    with pytest.raises(GraphQLRequestError, match=r"cannot reach GraphQL endpoint .*after 2 att"):
        query_graphql_api(USER_QUERY, {"id": 1}, max_retries=1)
