"""Lists that hold more than their declared size: the query cost, estimated before a
request runs, counts a session's shares as 10 and a context's messages as one per turn,
but an owner can make thousands of shares and one turn can make a hundred tool messages.
The response's objects are counted as it is made, and a request that runs past the limit
ends with LIMIT_EXCEEDED instead of making a response of hundreds of megabytes (the
review's attacks: 45 aliases of `shares` on a session of 10,000 shares, 9.3 s and 106 MB;
48 aliases of a context of 10,100 messages, 10.3 s and 116 MB)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Role
from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings, token_config
from tests.conftest import Api, Caller

LIMIT = 2_000


@pytest.fixture
def api(settings_factory: Callable[..., Settings]) -> Iterator[Api]:
    settings = settings_factory(max_query_cost=LIMIT)
    with TestClient(create_app(settings)) as client:
        yield Api(client, TokenIssuer(token_config(settings)))


def _session(alice: Caller) -> str:
    data = alice.ok(
        'mutation { sendMessage(input: {chatAppId: "knowledge", content: "Plans"}) '
        "{ session { id } } }"
    )
    return data["sendMessage"]["session"]["id"]


def _refused_past_the_limit(body: dict[str, Any]) -> None:
    assert body.get("errors"), body
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes == {"LIMIT_EXCEEDED"}, body["errors"][:2]
    assert f"more than {LIMIT:,} objects" in body["errors"][0]["message"]


def test_aliases_of_a_long_share_list_end_at_the_budget(api: Api) -> None:
    alice = api.as_("alice", "acme")
    session_id = _session(alice)
    share = "mutation($input: ShareInput!) { shareSession(input: $input) { id } }"
    for n in range(120):
        alice.ok(
            share,
            {
                "input": {
                    "sessionId": session_id,
                    "granteeKind": "USER",
                    "userId": f"u{n}",
                    "mode": "READ",
                }
            },
        )
    one = "query($id: ID!) { session(id: $id) { shares { id mode createdAt } } }"
    assert len(alice.ok(one, {"id": session_id})["session"]["shares"]) == 120
    many = (
        "query($id: ID!) { session(id: $id) { "
        + " ".join(f"s{i}: shares {{ id mode createdAt }}" for i in range(40))
        + " } }"
    )
    _refused_past_the_limit(alice.post(many, {"id": session_id}))


def test_a_context_of_many_tool_messages_ends_at_the_budget(api: Api) -> None:
    alice = api.as_("alice", "acme")
    agent = api.as_("agent", "acme", Role.SERVICE)
    session_id = _session(alice)
    append = "mutation($input: AppendTurnInput!) { appendTurn(input: $input) { id } }"
    tools = [{"name": f"tool{i}", "input": {"i": i}, "output": "ok"} for i in range(50)]
    for _ in range(45):
        agent.ok(
            append,
            {
                "input": {
                    "sessionId": session_id,
                    "role": "ASSISTANT",
                    "content": "Looked it up.",
                    "toolInvocations": tools,
                }
            },
        )
    # 45 turns: declared as 46 messages; made, about 2,300.
    context = "query($id: ID!) { session(id: $id) { context(maxTurns: 50) { messages { role } } } }"
    _refused_past_the_limit(alice.post(context, {"id": session_id}))
    few = "query($id: ID!) { session(id: $id) { context(maxTurns: 3) { messages { role } } } }"
    assert len(alice.ok(few, {"id": session_id})["session"]["context"]["messages"]) > 3


def test_aliases_inside_one_introspection_count_each(api: Api) -> None:
    alice = api.as_("alice", "acme")
    inside = " ".join(f"t{i}: types {{ name fields {{ name }} }}" for i in range(20))
    body = alice.post(f"{{ __schema {{ {inside} }} }}")
    assert {e["extensions"]["code"] for e in body["errors"]} == {"LIMIT_EXCEEDED"}
    assert "errors" not in alice.post("{ __schema { types { name fields { name } } } }")
