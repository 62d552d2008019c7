"""A bounded fuzz run against the GraphQL endpoint of a real `sessionhub serve`: queries and
mutations generated from the server's own introspected schema (hypothesis-graphql), valid
ones and invalid ones, sent by principals of every role. Whatever they ask, the server
answers with a coded error or data: never a 5xx, never an INTERNAL_SERVER_ERROR.

Derandomized: the same examples every run, so that CI is repeatable; FUZZ_EXAMPLES raises
the count for a longer run by hand.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import graphql
import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from tests.support.servers import Server, environment, start_server

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
INTROSPECTION = graphql.get_introspection_query()

CUSTOM_SCALARS = {
    "DateTime": st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
    .map(datetime.isoformat)
    .map(nodes.String),
    "JSON": st.one_of(
        st.text(max_size=20).map(nodes.String),
        st.integers(-(2**70), 2**70).map(nodes.Int),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    ),
}
FUZZING = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Fuzzed:
    def __init__(self, server: Server) -> None:
        self.url = f"{server.base_url}/graphql"
        self.client = httpx.Client(timeout=60.0)
        self.tokens = [
            server.token("alice", "acme"),
            server.token("root", "acme", "--roles", "admin"),
            server.token("agent", "acme", "--roles", "service"),
            server.token("aud", "acme", "--roles", "auditor,entity-admin"),
            server.token("gina", "globex", "--external"),
        ]
        response = self.client.post(
            self.url,
            json={"query": INTROSPECTION},
            headers={"Authorization": f"Bearer {self.tokens[0]}"},
        )
        self.schema = graphql.build_client_schema(response.json()["data"])
        # Something to find: a session of alice's with a few turns.
        self.send(
            self.tokens[0],
            'mutation { sendMessage(input: {chatAppId: "support", content: "Printer jam"}) '
            "{ session { id } } }",
        )

    def send(self, token: str, query: str) -> httpx.Response:
        return self.client.post(
            self.url, json={"query": query}, headers={"Authorization": f"Bearer {token}"}
        )

    def check(self, token: str, query: str) -> None:
        response = self.send(token, query)
        assert response.status_code < 500, (query, response.text)
        body = response.json()
        assert "data" in body or "errors" in body, (query, body)
        for error in body.get("errors") or ():
            code = (error.get("extensions") or {}).get("code")
            assert code is not None, (query, error)
            assert code != "INTERNAL_SERVER_ERROR", (query, error)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    folder = tmp_path_factory.mktemp("fuzzed")
    server = start_server(folder, environment(folder))
    try:
        fuzzed = Fuzzed(server)
        yield fuzzed
        fuzzed.client.close()
        assert "graphql.unexpected_error" not in server.log(), server.log()[-3000:]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("kind", "mode"),
    [("query", Mode.POSITIVE), ("mutation", Mode.POSITIVE), ("query", Mode.NEGATIVE)],
)
def test_generated_operations_never_fail_the_server(fuzzed: Fuzzed, kind: str, mode: Mode) -> None:
    strategy = from_schema(
        fuzzed.schema,
        custom_scalars=CUSTOM_SCALARS,
        mode=mode,
        fields=_root_fields(fuzzed.schema, kind),
    )

    @FUZZING
    @given(query=strategy, token=st.sampled_from(fuzzed.tokens))
    def run(query: str, token: str) -> None:
        fuzzed.check(token, query)

    run()


def _root_fields(schema: graphql.GraphQLSchema, kind: str) -> list[str]:
    root = schema.query_type if kind == "query" else schema.mutation_type
    assert root is not None
    return sorted(root.fields)
