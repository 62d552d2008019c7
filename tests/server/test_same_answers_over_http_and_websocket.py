"""The transports share one execution seam: the same documents sent over HTTP and over the
WebSocket give the same data and the same errors (messages, codes, locations, paths),
whether they succeed, fail validation, break a limit or fail in a resolver."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

pytestmark = pytest.mark.both_paths

if TYPE_CHECKING:
    from tests.support.live import Live, Socket

SEND = """mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) { session { id } turn { id seq } } }"""
APPEND = """mutation Append($input: AppendTurnInput!) { appendTurn(input: $input) { seq } }"""
SESSION = """query S($id: ID!) { session(id: $id) { id title turnCount tags
  turns(last: 5) { edges { cursor node { seq role content authorId
    toolInvocations { id name input output status } } } pageInfo { hasPreviousPage } } } }"""
SEVERAL = "query A { me { userId } } query B { chatApps { id } }"
NESTED = "{ " + "sessions { edges { node { " * 8 + "id" + " } } }" * 8 + " }"
ALIASES = "{ " + " ".join(f"a{i}: me {{ userId }}" for i in range(60)) + " }"
TOKENS = "{ " + "me { userId } " * 3000 + "}"
COSTLY = """query C($n: Int, $m: Int) { sessions(first: $n) { edges { node {
  turns(last: $m) { edges { node { toolInvocations { name } } } } } } } }"""
RENAME = """mutation R($id: ID!, $title: String!) { renameSession(id: $id, title: $title) { id title } }"""


def _documents(session_id: str) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    return [
        (
            "{ me { userId entityId roles } chatApps { id name settings { allowSharing } } }",
            None,
            None,
        ),
        (SESSION, {"id": session_id}, None),
        (SESSION, {"id": "nope"}, None),
        (SESSION, {"id": 12}, "S"),
        (SESSION, None, None),  # a required variable missing
        ("{ me { userId }", None, None),  # syntax
        ("{ me { nope } }", None, None),  # validation
        (
            '{ session(id: "x") { id } sessions(first: "two") { edges { node { id } } } }',
            None,
            None,
        ),
        (SEVERAL, None, None),  # several operations, none named
        (SEVERAL, None, "B"),
        ("query A { me { userId } }", None, "C"),  # no such operation
        ("fragment F on Query { me { userId } }", None, None),  # no operation at all
        (
            "query Q($n: Int) { sessions(first: $n) { edges { node { id } } } }",
            {"n": "many"},
            None,
        ),
        (NESTED, None, None),
        (ALIASES, None, None),
        (TOKENS, None, None),
        (COSTLY, {"n": 100, "m": 100}, None),
        (RENAME, {"id": session_id, "title": "Same either way"}, None),
        (RENAME, {"id": "nope", "title": "x"}, None),  # NOT_FOUND in the resolver
        (SEND, {"input": {"chatAppId": "nope", "content": "hi"}}, None),
        (SEND, {"input": {"chatAppId": "team", "content": ""}}, None),
        ('{ __type(name: "Turn") { name fields { name type { kind name } } } }', None, None),
    ]


def _over_http(live: Live, token: str, query: str, variables: Any, name: str | None) -> dict:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    if name is not None:
        body["operationName"] = name
    response = live.client.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})
    return response.json()


def _over_websocket(ws: Socket, op_id: str, query: str, variables: Any, name: str | None) -> dict:
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    if name is not None:
        payload["operationName"] = name
    ws.session.send_json(
        {"id": op_id, "type": "start" if ws.legacy else "subscribe", "payload": payload}
    )
    message = ws.receive()
    assert message.get("id") == op_id, message
    if message["type"] == "error":
        errors = message["payload"]
        return {"errors": [errors] if ws.legacy else errors}
    assert message["type"] == ("data" if ws.legacy else "next"), message
    assert ws.receive() == {"type": "complete", "id": op_id}
    return message["payload"]


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_the_same_documents_give_the_same_answers(live: Live, protocol: str) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice, "hello")
    live.ok(
        alice,
        APPEND,
        {
            "input": {
                "sessionId": session_id,
                "role": "ASSISTANT",
                "content": "hi",
                "toolInvocations": [
                    {"id": "t1", "name": "search", "input": {"q": "x"}, "output": {"n": 1}}
                ],
            }
        },
    )
    documents = _documents(session_id)
    with live.connect(protocol) as ws:
        ws.init(alice)
        for n, (query, variables, name) in enumerate(documents):
            http = _over_http(live, alice, query, variables, name)
            socket = _over_websocket(ws, f"op{n}", query, variables, name)
            if ws.legacy:  # graphql-ws carries one error of a refused operation
                http = {**http, "errors": http["errors"][:1]} if "data" not in http else http
            assert socket == http, (query[:80], variables, name)
            codes = {e["extensions"]["code"] for e in http.get("errors", ())}
            assert "INTERNAL_SERVER_ERROR" not in codes, http
    # Both ways refused what they should, with the codes of each kind of refusal.
    refused = [_over_http(live, alice, *d) for d in documents]
    codes = {e["extensions"]["code"] for body in refused for e in body.get("errors", ())}
    assert codes == {"BAD_USER_INPUT", "LIMIT_EXCEEDED", "NOT_FOUND"}
