"""GraphQL over WebSocket against the real app in process (Starlette's TestClient): both
subprotocols, authentication and protocol errors, replay then live without gaps or
duplicates, revocation, expiry and deletion ending subscriptions, the sidebar feed,
shared execution, and the counts that prove nothing is left behind."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from starlette.websockets import WebSocketDisconnect

from sessionhub.domain.models import Role

if TYPE_CHECKING:
    from tests.support.live import Live

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]

EVENTS = """subscription Events($id: ID!, $after: Int) {
  sessionEvents(sessionId: $id, afterSeq: $after) {
    __typename
    ... on TurnAdded { sessionId seq turn { id seq role content } }
    ... on TurnUpdated { seq turn { feedback { kind } verification { grade } } }
    ... on SessionUpdated { session { id title archived turnCount } }
    ... on AccessRevoked { sessionId reason }
    ... on SessionDeleted { sessionId }
  }
}"""

SEQS = """subscription Seqs($id: ID!, $after: Int) {
  sessionEvents(sessionId: $id, afterSeq: $after) { __typename ... on TurnAdded { seq } }
}"""

SIDEBAR = "subscription { mySessions { change sessionId session { id title ownerId } } }"

TURNS = """query($id: ID!) { session(id: $id) { turns(first: 100) { edges { node { seq content } } } } }"""

SHARE = """mutation($input: ShareInput!) { shareSession(input: $input) { id } }"""


def _until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.01)


def _closed_with(socket: Any) -> int:
    with pytest.raises(WebSocketDisconnect) as closed:
        socket.receive()
    return closed.value.code


def _share(live: Live, owner: str, session_id: str, user: str, **extra: Any) -> str:
    data = live.ok(
        owner,
        SHARE,
        {"input": {"sessionId": session_id, "granteeKind": "USER", "userId": user, **extra}},
    )
    return data["shareSession"]["id"]


# The two protocols


@pytest.mark.both_paths
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_replay_then_live_over_both_protocols(live: Live, protocol: str) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice, "first")
    live.send(alice, session_id, "second")
    live.send(alice, session_id, "third")

    with live.connect(protocol) as ws:
        assert ws.init(alice) == {"type": "connection_ack"}
        ws.subscribe("1", EVENTS, {"id": session_id, "after": 1})
        replayed = [ws.event("1") for _ in range(2)]
        assert [e["seq"] for e in replayed] == [2, 3]
        assert replayed[0] == {
            "__typename": "TurnAdded",
            "sessionId": session_id,
            "seq": 2,
            "turn": {
                "id": replayed[0]["turn"]["id"],
                "seq": 2,
                "role": "USER",
                "content": "second",
            },
        }
        live.send(alice, session_id, "fourth")
        assert ws.event("1")["turn"]["content"] == "fourth"

        ws.complete("1")
        _until(lambda: live.stats()["members"] == 0)
        live.send(alice, session_id, "fifth")
        ws.subscribe("2", "{ me { userId } }")
        # Nothing more for "1": the next message is the answer to "2".
        assert ws.payload("2") == {"data": {"me": {"userId": "alice"}}}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_queries_and_mutations_run_over_the_socket(live: Live, protocol: str) -> None:
    alice = live.token("alice")
    with live.connect(protocol) as ws:
        ws.init(alice)
        ws.subscribe(
            "m",
            'mutation { sendMessage(input: {chatAppId: "team", content: "over ws"}) '
            "{ turn { seq content } } }",
        )
        assert ws.payload("m") == {
            "data": {"sendMessage": {"turn": {"seq": 1, "content": "over ws"}}}
        }
        assert ws.receive() == {"type": "complete", "id": "m"}


def test_request_errors_answer_with_an_error_message(live: Live) -> None:
    alice = live.token("alice")
    with live.connect() as ws:
        ws.init(alice)
        ws.subscribe("bad", "subscription { sessionEvents(sessionId: 1) { nope } }")
        message = ws.receive()
        assert message["type"] == "error" and message["id"] == "bad"
        assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"

        ws.subscribe("vars", EVENTS, {"after": 1})
        message = ws.receive()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"

        ws.subscribe("neg", EVENTS, {"id": "x", "after": -1})
        assert ws.receive()["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# Authentication and protocol errors


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("token_kind", ["missing", "garbage", "expired", "other-secret"])
def test_a_bad_token_closes_with_4401(live: Live, protocol: str, token_kind: str) -> None:
    tokens = {
        "missing": None,
        "garbage": "not-a-jwt",
        "expired": live.token("alice", ttl=-600),
        "other-secret": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIiwiZW50aXR5IjoiYiIsImV4cCI6OTk5OTk5OTk5OX0.x",
    }
    with live.connect(protocol) as ws:
        token = tokens[token_kind]
        ws.session.send_json(
            {"type": "connection_init", "payload": {"token": token} if token else {}}
        )
        if protocol == "graphql-ws":
            error = ws.receive()
            assert error["type"] == "connection_error"
            assert error["payload"]["message"]
        assert _closed_with(ws) == 4401


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_connection_ends_when_its_token_expires(live: Live, protocol: str) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice)
    # Long enough to subscribe even on a loaded machine; the socket must then close by
    # itself, with no message from the client.
    short = live.token("alice", ttl=3)
    with live.connect(protocol) as ws:
        assert ws.init(short) == {"type": "connection_ack"}
        ws.subscribe("s", EVENTS, {"id": session_id, "after": 0})
        assert ws.event("s")["seq"] == 1
        assert _closed_with(ws) == 4401
    _until(lambda: live.stats()["ws_connections"] == 0)
    assert live.stats()["members"] == 0


def test_token_in_payload_forms_and_upgrade_header(live: Live) -> None:
    alice = live.token("alice")
    with live.connect() as ws:
        assert ws.init(None, {"token": alice}) == {"type": "connection_ack"}
    with live.connect() as ws:
        assert ws.init(None, {"authorization": f"Bearer {alice}"}) == {"type": "connection_ack"}
    with live.client.websocket_connect(
        "/graphql",
        subprotocols=["graphql-transport-ws"],
        headers={"Authorization": f"Bearer {alice}"},
    ) as raw:
        raw.send_json({"type": "connection_init"})
        assert raw.receive_json() == {"type": "connection_ack"}


def test_protocol_errors_close_with_their_codes(live: Live) -> None:
    alice = live.token("alice")
    with live.connect() as ws:
        ws.subscribe("1", "{ me { userId } }")
        assert _closed_with(ws) == 4401, "subscribe before connection_init"
    with live.connect() as ws:
        ws.init(alice)
        ws.session.send_json({"type": "connection_init"})
        assert _closed_with(ws) == 4429
    with live.connect() as ws:
        ws.init(alice)
        session_id = live.new_session(alice)
        ws.subscribe("same", EVENTS, {"id": session_id, "after": 0})
        ws.event("same")
        ws.subscribe("same", EVENTS, {"id": session_id})
        assert _closed_with(ws) == 4409
    with live.connect() as ws:
        ws.session.send_text("not json")
        assert _closed_with(ws) == 4400
    with live.connect() as ws:
        ws.init(alice)
        ws.session.send_json({"type": "ping", "payload": {"at": 1}})
        assert ws.receive() == {"type": "pong"}
    with pytest.raises(WebSocketDisconnect) as refused:  # noqa: SIM117
        with live.client.websocket_connect("/graphql", subprotocols=["mqtt"]) as ws:
            ws.receive_json()
    assert refused.value.code == 4406


def test_connection_init_must_come_in_time(live_factory: Callable[..., Live]) -> None:
    live = live_factory(ws_init_timeout_seconds=0.2)
    for protocol in PROTOCOLS:
        with live.connect(protocol) as ws:
            assert _closed_with(ws) == 4408


# Who may follow a session


def test_only_readers_may_subscribe_anyone_else_gets_not_found(live: Live) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice, "private")
    outsiders = {
        "same entity, no share": live.token("bob"),
        "other entity admin": live.token("root", "globex", Role.ADMIN),
    }
    for who, token in outsiders.items():
        with live.connect() as ws:
            ws.init(token)
            ws.subscribe("1", EVENTS, {"id": session_id, "after": 0})
            message = ws.receive()
            assert message["type"] == "error", who
            assert message["payload"][0]["extensions"]["code"] == "NOT_FOUND", who
            ws.subscribe("2", EVENTS, {"id": "no-such-session", "after": 0})
            missing = ws.receive()
            assert missing["payload"][0]["extensions"]["code"] == "NOT_FOUND"
    # An entity admin reads every session of the entity, so may follow it.
    with live.connect() as ws:
        ws.init(live.token("eve", "acme", Role.ENTITY_ADMIN))
        ws.subscribe("1", EVENTS, {"id": session_id, "after": 0})
        assert ws.event("1")["seq"] == 1
    assert live.stats()["members"] == 0


# Order, gaps and duplicates


def test_replay_racing_live_turns_has_no_gap_and_no_duplicate(
    live_factory: Callable[..., Live],
) -> None:
    # A replay longer than one store read (batches of 5 here), while turns keep coming.
    live = live_factory(subscription_queue_limit=10)
    alice = live.token("alice")
    session_id = live.new_session(alice, "turn 1")
    for i in range(2, 41):
        live.send(alice, session_id, f"turn {i}")
    with live.connect() as ws:
        ws.init(alice)
        ws.subscribe("1", SEQS, {"id": session_id, "after": 3})
        for i in range(41, 61):
            live.send(alice, session_id, f"turn {i}")
        seqs = []
        while not seqs or seqs[-1] < 60:
            seqs.append(ws.event("1")["seq"])
    assert seqs == list(range(4, 61))


def test_reconnecting_with_the_last_seq_ends_with_exactly_the_stored_turns(live: Live) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice, "turn 1")
    received: list[dict[str, Any]] = []
    last = 0
    newest = 1
    for round_ in range(4):
        with live.connect() as ws:
            ws.init(alice)
            ws.subscribe("1", EVENTS, {"id": session_id, "after": last})
            for i in range(3):
                newest = live.send(alice, session_id, f"round {round_} turn {i}")
            while last < newest:
                event = ws.event("1")
                received.append(event)
                last = event["seq"]
        # Turns sent while nobody listens; the next round resumes after `last`.
        newest = live.send(alice, session_id, f"offline {round_}")
    with live.connect() as ws:
        ws.init(alice)
        ws.subscribe("1", EVENTS, {"id": session_id, "after": last})
        received.append(ws.event("1"))
    stored = live.ok(alice, TURNS, {"id": session_id})["session"]["turns"]["edges"]
    got = [(e["seq"], e["turn"]["content"]) for e in received]
    assert got == [(e["node"]["seq"], e["node"]["content"]) for e in stored]
    assert len(got) == 1 + 4 * 4


@pytest.mark.both_paths
def test_turn_and_session_updates_arrive_as_their_own_events(live: Live) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice)
    with live.connect() as ws:
        ws.init(alice)
        ws.subscribe("1", EVENTS, {"id": session_id, "after": 0})
        turn_id = ws.event("1")["turn"]["id"]
        live.ok(
            alice,
            "mutation($t: ID!) { addFeedback(turnId: $t, input: {kind: THUMBS_UP}) { id } }",
            {"t": turn_id},
        )
        updated = ws.event("1")
        assert updated == {
            "__typename": "TurnUpdated",
            "seq": 1,
            "turn": {"feedback": [{"kind": "THUMBS_UP"}], "verification": None},
        }
        live.ok(
            alice,
            'mutation($id: ID!) { renameSession(id: $id, title: "Renamed") { id } }',
            {"id": session_id},
        )
        renamed = ws.event("1")
        assert renamed["__typename"] == "SessionUpdated"
        assert renamed["session"]["title"] == "Renamed"


# Ending subscriptions


@pytest.mark.both_paths
def test_revoking_a_share_ends_only_the_subscriptions_that_lost_access(live: Live) -> None:
    alice, bob, carol = live.token("alice"), live.token("bob"), live.token("carol")
    session_id = live.new_session(alice, "shared work")
    bob_share = _share(live, alice, session_id, "bob")
    _share(live, alice, session_id, "carol")
    with live.connect() as ws_bob, live.connect() as ws_carol, live.connect() as ws_alice:
        for ws, token in ((ws_bob, bob), (ws_carol, carol), (ws_alice, alice)):
            ws.init(token)
            ws.subscribe("s", EVENTS, {"id": session_id, "after": 0})
            assert ws.event("s")["seq"] == 1
        live.ok(alice, "mutation($id: ID!) { revokeShare(id: $id) { id } }", {"id": bob_share})

        ended = ws_bob.event("s")
        assert ended["__typename"] == "AccessRevoked"
        assert ended["sessionId"] == session_id
        assert ws_bob.receive() == {"type": "complete", "id": "s"}

        live.send(alice, session_id, "still here")
        for ws in (ws_carol, ws_alice):
            assert ws.event("s")["turn"]["content"] == "still here"
        # Bob cannot come back.
        ws_bob.subscribe("again", EVENTS, {"id": session_id, "after": 0})
        assert ws_bob.receive()["payload"][0]["extensions"]["code"] == "NOT_FOUND"


def test_an_expired_share_ends_the_subscription(live_factory: Callable[..., Live]) -> None:
    live = live_factory(share_expiry_sweep_seconds=0.1)
    alice, bob = live.token("alice"), live.token("bob")
    session_id = live.new_session(alice)
    expires = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    _share(live, alice, session_id, "bob", expiresAt=expires)
    with live.connect() as ws:
        ws.init(bob)
        ws.subscribe("s", EVENTS, {"id": session_id, "after": 0})
        assert ws.event("s")["seq"] == 1
        started = time.monotonic()
        assert ws.event("s")["__typename"] == "AccessRevoked"
        assert ws.receive() == {"type": "complete", "id": "s"}
        assert time.monotonic() - started < 5


@pytest.mark.both_paths
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_deleting_the_session_ends_every_subscription(live: Live, protocol: str) -> None:
    alice, bob = live.token("alice"), live.token("bob")
    session_id = live.new_session(alice)
    _share(live, alice, session_id, "bob")
    with live.connect(protocol) as ws_alice, live.connect(protocol) as ws_bob:
        for ws, token in ((ws_alice, alice), (ws_bob, bob)):
            ws.init(token)
            ws.subscribe("s", EVENTS, {"id": session_id, "after": 0})
            ws.event("s")
        live.ok(alice, "mutation($id: ID!) { deleteSession(id: $id) }", {"id": session_id})
        for ws in (ws_alice, ws_bob):
            assert ws.event("s") == {"__typename": "SessionDeleted", "sessionId": session_id}
            assert ws.receive() == {"type": "complete", "id": "s"}
    _until(lambda: live.stats()["groups"] == 0)


# The sidebar


@pytest.mark.both_paths
def test_my_sessions_follows_created_renamed_shared_unshared_deleted(live: Live) -> None:
    alice, bob = live.token("alice"), live.token("bob")
    with live.connect() as ws_alice, live.connect() as ws_bob:
        ws_alice.init(alice)
        ws_bob.init(bob)
        ws_alice.subscribe("side", SIDEBAR)
        ws_bob.subscribe("side", SIDEBAR)
        _until(lambda: live.stats()["members"] == 2)

        session_id = live.new_session(alice, "Quarterly numbers")
        created = ws_alice.event("side")
        assert created["change"] == "CREATED"
        assert created["session"]["ownerId"] == "alice"

        share_id = _share(live, alice, session_id, "bob")
        shared = ws_bob.event("side")
        assert (shared["change"], shared["sessionId"]) == ("SHARED", session_id)

        live.ok(
            alice,
            'mutation($id: ID!) { renameSession(id: $id, title: "Q3") { id } }',
            {"id": session_id},
        )
        for ws in (ws_alice, ws_bob):
            renamed = ws.event("side")
            assert (renamed["change"], renamed["session"]["title"]) == ("UPDATED", "Q3")

        live.ok(alice, "mutation($id: ID!) { revokeShare(id: $id) { id } }", {"id": share_id})
        assert ws_bob.event("side") == {
            "change": "UNSHARED",
            "sessionId": session_id,
            "session": None,
        }

        live.ok(alice, "mutation($id: ID!) { deleteSession(id: $id) }", {"id": session_id})
        assert ws_alice.event("side") == {
            "change": "DELETED",
            "sessionId": session_id,
            "session": None,
        }
        # Bob's sidebar hears nothing of a session no longer shared with him.
        ws_bob.subscribe("q", "{ me { userId } }")
        assert ws_bob.payload("q") == {"data": {"me": {"userId": "bob"}}}


# Shared execution and what is left behind


def test_subscribers_of_one_document_share_one_group(live: Live) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice)
    sockets = [live.connect() for _ in range(20)]
    opened = [s.__enter__() for s in sockets]
    try:
        for i, ws in enumerate(opened):
            ws.init(alice if i % 2 else live.token(f"admin{i}", "acme", Role.ENTITY_ADMIN))
            # Different afterSeq, same document: one group.
            ws.subscribe("s", EVENTS, {"id": session_id, "after": i % 2})
        _until(lambda: live.stats()["members"] == 20)
        assert live.stats()["groups"] == 1
        with live.connect() as other:
            other.init(alice)
            other.subscribe("t", SEQS, {"id": session_id})
            _until(lambda: live.stats()["members"] == 21)
            assert live.stats()["groups"] == 2, "another document, another group"
        _until(lambda: live.stats()["members"] == 20)

        live.send(alice, session_id, "to everyone")
        payloads = []
        for i, ws in enumerate(opened):
            if i % 2 == 0:
                assert ws.event("s")["seq"] == 1  # replayed from afterSeq 0
            payloads.append(ws.payload("s"))
        assert all(p == payloads[0] for p in payloads)
        assert payloads[0]["data"]["sessionEvents"]["turn"]["content"] == "to everyone"
    finally:
        for s in sockets:
            s.__exit__(None, None, None)
    _until(lambda: live.stats()["members"] == 0)
    stats = live.stats()
    assert (stats["groups"], stats["channels"], stats["ws_connections"]) == (0, 0, 0)


def test_hundreds_of_dropped_clients_leave_nothing_behind(live: Live) -> None:
    alice = live.token("alice")
    session_ids = [live.new_session(alice, f"s{i}") for i in range(5)]
    for round_ in range(300):
        with live.connect(PROTOCOLS[round_ % 2]) as ws:
            ws.init(alice)
            ws.subscribe("s", EVENTS, {"id": session_ids[round_ % 5], "after": 0})
            ws.subscribe("side", SIDEBAR)
            ws.event("s")
        # Left without complete / stop: the socket just goes.
    _until(lambda: live.stats()["ws_connections"] == 0)
    stats = live.stats()
    left = {
        k: stats[k]
        for k in (
            "members",
            "groups",
            "channels",
            "ws_operations",
            "ws_tasks",
            "ws_queued_messages",
        )
    }
    assert left == dict.fromkeys(left, 0)


def test_metrics_show_the_live_side(live: Live) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice)
    with live.connect() as ws:
        ws.init(alice)
        ws.subscribe("s", EVENTS, {"id": session_id, "after": 0})
        ws.event("s")
        text = live.client.get("/metrics").text
        assert "sessionhub_realtime_members 1.0" in text
        assert "sessionhub_realtime_ws_connections 1.0" in text
        assert "# TYPE sessionhub_realtime_overflows_total counter" in text


def test_a_subscription_over_http_points_to_the_websocket(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.token('alice')}"}
    for response in (
        live.client.post("/graphql", json={"query": SIDEBAR}, headers=headers),
        live.client.get("/graphql", params={"query": SIDEBAR}, headers=headers),
    ):
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "WebSocket" in error["message"]
