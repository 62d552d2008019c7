"""Over HTTP, the execution seam answers every ordinary request exactly as Strawberry's
Schema.execute does: same status, same body, for good requests and bad ones. Where the
server is stricter than Strawberry (limits, a document with several operations and no
name), it says so with a coded error."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from strawberry import Schema
from strawberry.types.graphql import OperationType

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.server.app import create_app
from sessionhub.server.execution import Seam
from sessionhub.server.graphql_http import GraphQLHTTP
from sessionhub.server.settings import Settings, token_config


def _endpoint(client: TestClient) -> GraphQLHTTP:
    route = next(r for r in client.app.routes if getattr(r, "path", "") == "/graphql")
    return route.endpoint.__self__  # type: ignore[attr-defined]


@pytest.fixture
def client(settings: Settings) -> Iterator[tuple[TestClient, str]]:
    with TestClient(create_app(settings)) as client:
        token = TokenIssuer(token_config(settings)).issue("alice", "acme")
        yield client, token


SESSION = "query S($id: ID!) { session(id: $id) { id title turns(last: 5) { edges { node { seq content role toolInvocations { name input } } } } } }"
SEND = "mutation M($input: SendMessageInput!) { sendMessage(input: $input) { session { id } turn { seq } } }"
NESTED = "{ " + "sessions { edges { node { " * 8 + "id" + " } } }" * 8 + " }"
ALIASES = "{ " + " ".join(f"a{i}: me {{ userId }}" for i in range(60)) + " }"
SEVERAL = "query A { me { userId } } query B { chatApps { id } }"

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("POST", {"query": "{ me { userId entityId roles } chatApps { id } }"}),
    ("POST", {"query": SESSION, "variables": {"id": "nope"}}),
    ("POST", {"query": SESSION, "variables": {"id": 12}}),
    ("POST", {"query": SESSION}),
    ("POST", {"query": "{ me { userId }"}),  # syntax
    ("POST", {"query": "{ me { nope } }"}),  # validation
    ("POST", {"query": SEVERAL, "operationName": "B"}),
    ("POST", {"query": "query A { me { userId } }", "operationName": "C"}),
    ("POST", {"query": "fragment F on Query { me { userId } }"}),
    ("POST", {"query": "subscription { mySessions { change } }"}),
    ("GET", {"query": SEND, "variables": '{"input": {"content": "hi"}}'}),
    ("GET", {"query": "{ me { userId } }"}),
    ("POST", {"query": '{ session(id: "x") { id } sessions { edges { node { id } } } }'}),
    (
        "POST",
        {
            "query": "query Q($n: Int) { sessions(first: $n) { edges { node { id } } } }",
            "variables": {"n": "many"},
        },
    ),
]


def _send(client: TestClient, token: str, method: str, body: dict[str, Any], accept: str) -> Any:
    headers = {"Authorization": f"Bearer {token}", "x-request-id": "req-7", "accept": accept}
    if method == "GET":
        response = client.get("/graphql", params=body, headers=headers)
    else:
        response = client.post("/graphql", json=body, headers=headers)
    return response.status_code, response.json()


class StrawberryExecution:
    """Stands in for the seam in graphql_http: the same request through Schema.execute."""

    def __init__(self, schema: Schema) -> None:
        self._schema = schema

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Any,
        operation_name: str | None,
        allowed: Iterable[OperationType],
    ) -> Any:
        return await self._schema.execute(
            query,
            variable_values=variables,
            context_value=context,
            operation_name=operation_name,
            allowed_operation_types=allowed,
        )


def _both(http: TestClient, token: str, method: str, body: dict[str, Any], accept: str) -> tuple:
    endpoint = _endpoint(http)
    lean = _send(http, token, method, body, accept)
    seam = endpoint._seam
    endpoint._seam = StrawberryExecution(http.app.state.schema)  # type: ignore[assignment]
    try:
        plain = _send(http, token, method, body, accept)
    finally:
        endpoint._seam = seam
    return lean, plain


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
def test_same_answers_as_schema_execute(client: tuple[TestClient, str], accept: str) -> None:
    http, token = client
    assert isinstance(_endpoint(http)._seam, Seam)
    # A session with turns to read, through the API.
    data = _send(
        http,
        token,
        "POST",
        {"query": SEND, "variables": {"input": {"chatAppId": "support", "content": "hello"}}},
        accept,
    )[1]["data"]
    session_id = data["sendMessage"]["session"]["id"]
    requests = [*REQUESTS, ("POST", {"query": SESSION, "variables": {"id": session_id}})]
    for method, body in requests:
        lean, plain = _both(http, token, method, body, accept)
        assert lean == plain, (method, body)


def test_mutations_and_their_errors_alike(client: tuple[TestClient, str]) -> None:
    http, token = client
    mutations = [
        {"query": SEND, "variables": {"input": {"content": "hi"}}},
        {"query": SEND, "variables": {"input": {"chatAppId": "nope", "content": "hi"}}},
        {"query": SEND, "variables": {"input": {"chatAppId": "support", "content": ""}}},
    ]
    for body in mutations:
        lean, plain = _both(http, token, "POST", body, "application/json")
        assert lean == plain, body


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("{ " + "me { userId } " * 3000 + "}", "more than 10,000 tokens"),
        (NESTED, "deeper than 15 levels"),
        (ALIASES, "60 aliases"),
    ],
)
def test_limits_refuse_with_their_code(
    client: tuple[TestClient, str], query: str, says: str
) -> None:
    http, token = client
    status, body = _send(http, token, "POST", {"query": query}, "application/graphql-response+json")
    assert status == 400
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert says in body["errors"][0]["message"]


def test_several_operations_need_a_name(client: tuple[TestClient, str]) -> None:
    """Strawberry would run the first operation; a client that sent several must say which."""
    http, token = client
    status, body = _send(http, token, "POST", {"query": SEVERAL}, "application/json")
    assert status == 200
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "name one in 'operationName'" in body["errors"][0]["message"]
    _, named = _send(
        http, token, "POST", {"query": SEVERAL, "operationName": "A"}, "application/json"
    )
    assert named == {"data": {"me": {"userId": "alice"}}}
