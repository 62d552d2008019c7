"""Over HTTP, LeanPipeline answers every request exactly as Schema.execute with the
schema's extensions does: same status, same body, for good requests and bad ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from starlette.testclient import TestClient
from strawberry.extensions import SchemaExtension

from sessionhub.auth.permissions import auth_field
from sessionhub.auth.tokens import TokenIssuer
from sessionhub.schema.build import build_schema
from sessionhub.server.app import create_app
from sessionhub.server.execution import LeanPipeline
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

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("POST", {"query": "{ me { userId entityId roles } chatApps { id } }"}),
    ("POST", {"query": SESSION, "variables": {"id": "nope"}}),
    ("POST", {"query": SESSION, "variables": {"id": 12}}),
    ("POST", {"query": SESSION}),
    ("POST", {"query": "{ me { userId }"}),  # syntax
    ("POST", {"query": "{ me { nope } }"}),  # validation
    ("POST", {"query": "{ " + "me { userId } " * 3000 + "}"}),  # tokens
    ("POST", {"query": NESTED}),  # depth
    ("POST", {"query": ALIASES}),  # aliases
    ("POST", {"query": "query A { me { userId } } query B { chatApps { id } }"}),
    (
        "POST",
        {"query": "query A { me { userId } } query B { chatApps { id } }", "operationName": "B"},
    ),
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


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
def test_same_answers_as_schema_execute(client: tuple[TestClient, str], accept: str) -> None:
    http, token = client
    endpoint = _endpoint(http)
    assert isinstance(endpoint._pipeline, LeanPipeline)
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
        lean = _send(http, token, method, body, accept)
        pipeline, endpoint._pipeline = endpoint._pipeline, None
        try:
            plain = _send(http, token, method, body, accept)
        finally:
            endpoint._pipeline = pipeline
        assert lean == plain, (method, body)


def test_mutations_and_their_errors_alike(client: tuple[TestClient, str]) -> None:
    http, token = client
    endpoint = _endpoint(http)
    mutations = [
        {"query": SEND, "variables": {"input": {"content": "hi"}}},
        {"query": SEND, "variables": {"input": {"chatAppId": "nope", "content": "hi"}}},
        {"query": SEND, "variables": {"input": {"chatAppId": "support", "content": ""}}},
    ]
    for body in mutations:
        lean = _send(http, token, "POST", body, "application/json")
        pipeline, endpoint._pipeline = endpoint._pipeline, None
        try:
            plain = _send(http, token, "POST", body, "application/json")
        finally:
            endpoint._pipeline = pipeline
        assert lean == plain, body


def test_a_schema_with_another_extension_keeps_schema_execute() -> None:
    class Tracing(SchemaExtension):
        pass

    @strawberry.type
    class Query:
        hello: str = auth_field(lambda: "hi")

    @strawberry.type
    class Mutation:
        noop: str = auth_field(lambda: "ok")

    assert LeanPipeline.for_schema(build_schema([Query], [Mutation], extensions=[Tracing])) is None
    assert LeanPipeline.for_schema(build_schema([Query], [Mutation])) is None  # no caches
