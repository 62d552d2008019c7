"""Probing for what exists (issue 20, point 10): an id of another entity must cost what a
missing id costs, and share-link tokens cannot be tried at any rate.

Timing is not asserted (bench/existence_timing.py measures it); the work is. Every SQL
statement the real SQLite store runs during a probe is recorded with the connection's
trace callback, string literals blanked out (the ids differ, the statements must not),
and the probe of a session of acme by bob@globex must run exactly the statements of the
probe of an id nobody has.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Role
from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings, token_config
from tests.support.probing import (
    APPEND,
    BY_LINK,
    CHAT_APPS,
    READ,
    SEND_INTO,
    answers_nothing_there,
)

SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { session { id } turn { id } } }"""
FEEDBACK = """mutation($id: ID!) { addFeedback(turnId: $id, input: {kind: THUMBS_UP}) { id } }"""
GRADE = """mutation($id: ID!) { setVerification(turnId: $id, input: {grade: A}) { id } }"""
SHARE = """mutation($input: ShareInput!) { shareSession(input: $input) { id linkToken } }"""
REVOKE = "mutation($id: ID!) { revokeShare(id: $id) { id } }"

_LITERAL = re.compile(r"'(?:[^']|'')*'")


class Statements:
    """The SQL statements the store runs: the writer's, and the readers' in the order they
    ran (one request's reads run one after another), string literals blanked."""

    def __init__(self, store: Any) -> None:
        self._writer, *self._readers = store.connections.plain()
        self._written: list[str] = []
        self._read: list[str] = []
        self._writer.set_trace_callback(self._written.append)
        for reader in self._readers:
            reader.set_trace_callback(self._read.append)

    def during(self, probe: Callable[[], Any]) -> list[str]:
        self._written.clear()
        self._read.clear()
        probe()
        statements = _without_maintenance(self._written) + self._read
        return [_LITERAL.sub("?", s) for s in statements]


def _without_maintenance(writer: list[str]) -> list[str]:
    """The writer's statements less what the store does by itself at any time: background
    FTS5 merges (which any earlier write may set off) with the statements SQLite runs
    inside them (`-- ...`), and the transaction brackets, which a probe's window may cut.
    What a request writes (an audit event, a visit) stays."""
    return [
        statement
        for statement in writer
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK", "--"))
        and "VALUES ('merge'" not in statement
    ]


class World:
    def __init__(self, client: TestClient, issuer: TokenIssuer) -> None:
        self.client = client
        self.issuer = issuer
        self.statements = Statements(client.app.state.components.store)  # type: ignore[attr-defined]

    def token(self, user: str, entity: str, *roles: Role) -> str:
        return self.issuer.issue(user, entity, roles or (Role.USER,))

    def post(self, token: str, query: str, variables: dict[str, Any]) -> Any:
        return self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )

    def ok(self, token: str, query: str, variables: dict[str, Any]) -> dict:
        body = self.post(token, query, variables).json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def probe(self, token: str, query: str, variables: dict[str, Any]) -> list[str]:
        """The statements of a request that must answer as for nothing there."""
        answers: list[dict] = []
        statements = self.statements.during(
            lambda: answers.append(self.post(token, query, variables).json())
        )
        (body,) = answers
        assert answers_nothing_there(body), body
        return statements


@pytest.fixture
def world(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[World]:
    chat_apps = tmp_path / "chat_apps.toml"
    chat_apps.write_text(CHAT_APPS)
    # The share expiry sweep writes every second by default: once, at start, here.
    settings = settings_factory(chat_apps_file=chat_apps, share_expiry_sweep_seconds=3600)
    with TestClient(create_app(settings)) as client:
        # The trace callbacks go with the connections when the store closes. Taken off
        # from this thread while the store runs, they could deadlock: sqlite3 waits for a
        # connection's mutex holding the GIL, which a statement running on the store's
        # thread needs for its callback.
        yield World(client, TokenIssuer(token_config(settings)))


def _alices_session(world: World, *, link: bool) -> tuple[str, str]:
    """A session of alice@acme and its first turn; with `link`, shared by a LINK too."""
    alice = world.token("alice", "acme")
    sent = world.ok(alice, SEND, {"input": {"chatAppId": "team", "content": "Q3 numbers"}})
    session_id = sent["sendMessage"]["session"]["id"]
    world.ok(alice, SEND_INTO, {"id": session_id})
    if link:
        world.ok(alice, SHARE, {"input": {"sessionId": session_id, "granteeKind": "LINK"}})
        world.ok(
            alice,
            SHARE,
            {"input": {"sessionId": session_id, "granteeKind": "USER", "userId": "bob"}},
        )
    return session_id, sent["sendMessage"]["turn"]["id"]


PROBERS = {
    "other-entity-user": ("bob", "globex"),
    "other-entity-service": ("agent", "globex", Role.SERVICE),
    "same-entity-user-without-a-share": ("carol", "acme"),
}


@pytest.mark.parametrize("link", [False, True], ids=["no-shares", "shared"])
@pytest.mark.parametrize("prober", list(PROBERS))
@pytest.mark.parametrize(
    "query",
    [
        pytest.param(READ, id="session"),
        pytest.param(APPEND, id="appendTurn"),
        pytest.param(SEND_INTO, id="sendMessage"),
    ],
)
def test_a_session_of_another_entity_costs_what_a_missing_id_costs(
    world: World, prober: str, query: str, link: bool
) -> None:
    session_id, _ = _alices_session(world, link=link)
    token = world.token(*PROBERS[prober])
    # Warm the caches a first request fills (parsed document, verified token).
    world.probe(token, query, {"id": str(uuid.uuid4())})

    foreign = world.probe(token, query, {"id": session_id})
    missing = world.probe(token, query, {"id": str(uuid.uuid4())})

    assert foreign == missing
    assert any("FROM sessions" in s for s in foreign)


@pytest.mark.parametrize(
    "query", [pytest.param(FEEDBACK, id="addFeedback"), pytest.param(GRADE, id="setVerification")]
)
def test_a_turn_of_another_entity_costs_what_a_missing_turn_costs(world: World, query: str) -> None:
    _, turn_id = _alices_session(world, link=True)
    agent = world.token("agent", "globex", Role.SERVICE)
    world.probe(agent, query, {"id": str(uuid.uuid4())})

    foreign = world.probe(agent, query, {"id": turn_id})
    missing = world.probe(agent, query, {"id": str(uuid.uuid4())})

    assert foreign == missing
    assert any("FROM turns" in s for s in foreign)


def test_a_link_of_another_entity_costs_what_an_unknown_token_costs(world: World) -> None:
    alice = world.token("alice", "acme")
    session_id, _ = _alices_session(world, link=False)
    links = [
        world.ok(alice, SHARE, {"input": {"sessionId": session_id, "granteeKind": "LINK"}})[
            "shareSession"
        ]
        for _ in range(2)
    ]
    world.ok(alice, REVOKE, {"id": links[1]["id"]})
    bob = world.token("bob", "globex")
    world.probe(bob, BY_LINK, {"token": secrets.token_urlsafe(32)})

    foreign = world.probe(bob, BY_LINK, {"token": links[0]["linkToken"]})
    revoked = world.probe(world.token("dave", "acme"), BY_LINK, {"token": links[1]["linkToken"]})
    unknown = world.probe(bob, BY_LINK, {"token": secrets.token_urlsafe(32)})

    assert foreign == unknown == revoked
    assert any("FROM shares" in s for s in foreign)
    assert any("FROM sessions" in s for s in foreign)


# The store's look-up of the links a principal opened on one session.
OPENED_LINKS = "SELECT share_id FROM share_link_visits WHERE"
LISTINGS = {
    "searchSessions": (
        'query { searchSessions(query: "numbers") { edges { node { session { id } } } } }',
        lambda data: [e["node"]["session"]["id"] for e in data["searchSessions"]["edges"]],
    ),
    "sharedWithMe": (
        "query { sharedWithMe { edges { node { id } } } }",
        lambda data: [e["node"]["id"] for e in data["sharedWithMe"]["edges"]],
    ),
    "pinnedSessions": (
        "query { pinnedSessions { id } }",
        lambda data: [s["id"] for s in data["pinnedSessions"]],
    ),
}


def test_listings_read_opened_links_only_where_a_session_has_a_link(world: World) -> None:
    """What a listing finds is in the caller's own scope (their entity's sessions for an
    auditor, those shared with them, their pins): no answer time of it tells them
    anything, and it is spared the look-ups that make a named id cost what a missing one
    does, which would add one query per session to every page."""
    alice = world.token("alice", "acme")
    aud = world.token("aud", "acme", Role.AUDITOR)
    sessions = [_alices_session(world, link=False)[0] for _ in range(3)]
    sessions.append(_alices_session(world, link=True)[0])
    for session_id in sessions:
        grant = {"sessionId": session_id, "granteeKind": "USER", "userId": "aud"}
        world.ok(alice, SHARE, {"input": grant})
        world.ok(aud, "mutation($id: ID!) { pinSession(id: $id) { id } }", {"id": session_id})

    for name, (query, found) in LISTINGS.items():
        answers: list[dict] = []
        statements = world.statements.during(
            lambda q=query, into=answers: into.append(world.ok(aud, q, {}))
        )
        assert sorted(found(answers[0])) == sorted(sessions), name
        visits = [s for s in statements if s.startswith(OPENED_LINKS)]
        assert len(visits) == 1, (name, visits)  # the session with a LINK share, alone

    # A session named by its id is still looked up in full, LINK share or none.
    named = world.statements.during(lambda: world.ok(aud, READ, {"id": sessions[0]}))
    assert any(s.startswith(OPENED_LINKS) for s in named)


# ---------------------------------------------------------------------------------------
# Opening share links: a rate per principal, failed tries counted


def _link(world: World, alice: str) -> tuple[str, str]:
    session_id, _ = _alices_session(world, link=False)
    made = world.ok(alice, SHARE, {"input": {"sessionId": session_id, "granteeKind": "LINK"}})
    return session_id, made["shareSession"]["linkToken"]


def _limited(body: dict) -> dict:
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", body
    assert body.get("data") is None, body
    return error


@pytest.fixture
def limited_world(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[World]:
    chat_apps = tmp_path / "chat_apps.toml"
    chat_apps.write_text(CHAT_APPS)
    settings = settings_factory(chat_apps_file=chat_apps, link_open_rate="3/2 seconds")
    with TestClient(create_app(settings)) as client:
        # The trace callbacks go with the connections when the store closes. Taken off
        # from this thread while the store runs, they could deadlock: sqlite3 waits for a
        # connection's mutex holding the GIL, which a statement running on the store's
        # thread needs for its callback.
        yield World(client, TokenIssuer(token_config(settings)))


def test_guessing_link_tokens_is_held_back_per_principal(limited_world: World) -> None:
    world = limited_world
    alice = world.token("alice", "acme")
    session_id, token = _link(world, alice)
    dave = world.token("dave", "acme")

    # Three guesses use dave's rate up: unknown tokens count like good ones.
    for _ in range(3):
        world.probe(dave, BY_LINK, {"token": secrets.token_urlsafe(32)})
    refused = world.post(dave, BY_LINK, {"token": token})

    assert refused.status_code == 429
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 2
    error = _limited(refused.json())
    assert error["extensions"]["retryAfter"] == retry_after
    assert error["message"] == (
        f"Too many share links opened (3 per 2 seconds); try again in {retry_after} s."
    )
    # Held back, the good token opened nothing: the session is not dave's to read.
    assert world.ok(dave, READ, {"id": session_id}) == {"session": None}

    # Another principal, even of the same entity and with the same token, is not held back.
    erin = world.token("erin", "acme")
    assert world.ok(erin, BY_LINK, {"token": token})["sessionByShareLink"]["id"] == session_id

    # Once the window has passed, dave opens the link.
    time.sleep(retry_after + 0.05)
    assert world.ok(dave, BY_LINK, {"token": token})["sessionByShareLink"]["id"] == session_id
    assert world.ok(dave, READ, {"id": session_id}) == {"session": {"id": session_id}}


def test_429_only_when_rate_limits_are_all_that_held_the_request_back(
    limited_world: World,
) -> None:
    world = limited_world
    dave = world.token("dave", "acme")
    for _ in range(3):
        world.probe(dave, BY_LINK, {"token": "unknown"})

    only_limits = world.post(
        dave,
        'query { a: sessionByShareLink(token: "t1") { id } '
        'b: sessionByShareLink(token: "t2") { id } c: session(id: "nope") { id } }',
        {},
    )
    assert only_limits.status_code == 429 and only_limits.headers["retry-after"]
    errors = only_limits.json()["errors"]
    assert errors and {e["extensions"]["code"] for e in errors} == {"LIMIT_EXCEEDED"}

    # A refusal of another kind beside it: the status is the one that refusal makes.
    mixed = world.post(
        dave,
        'query { b: session(id: "") { id } a: sessionByShareLink(token: "t3") { id } }',
        {},
    )
    assert mixed.status_code == 200 and "retry-after" not in mixed.headers, mixed.json()
    codes = {e["path"][0]: e["extensions"] for e in mixed.json()["errors"]}
    assert codes["a"]["code"] == "LIMIT_EXCEEDED" and codes["a"]["retryAfter"] >= 1
    assert codes["b"] == {"code": "BAD_USER_INPUT"}


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
def test_over_the_websocket_the_refusal_carries_its_wait(
    limited_world: World, protocol: str
) -> None:
    world = limited_world
    _, token = _link(world, world.token("alice", "acme"))
    dave = world.token("dave", "acme")
    for _ in range(3):
        world.probe(dave, BY_LINK, {"token": secrets.token_urlsafe(32)})

    legacy = protocol == "graphql-ws"
    with world.client.websocket_connect("/graphql", subprotocols=[protocol]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {dave}"}})
        assert ws.receive_json() == {"type": "connection_ack"}
        ws.send_json(
            {
                "id": "1",
                "type": "start" if legacy else "subscribe",
                "payload": {"query": BY_LINK, "variables": {"token": token}},
            }
        )
        message = ws.receive_json()
        while message["type"] == "ka":
            message = ws.receive_json()
    assert message["type"] == ("data" if legacy else "next"), message
    error = _limited(message["payload"])
    assert 1 <= error["extensions"]["retryAfter"] <= 2
    assert f"try again in {error['extensions']['retryAfter']} s" in error["message"]


def test_instances_sharing_redis_share_the_count(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    from tests.realtime.conftest import RedisServer

    redis_server = RedisServer(tmp_path)
    redis_server.start()
    chat_apps = tmp_path / "chat_apps.toml"
    chat_apps.write_text(CHAT_APPS)
    settings = settings_factory(
        chat_apps_file=chat_apps, link_open_rate="3/minute", redis_url=redis_server.url
    )
    try:
        with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
            issuer = TokenIssuer(token_config(settings))
            first, second = World(one, issuer), World(two, issuer)
            dave = first.token("dave", "acme")
            first.probe(dave, BY_LINK, {"token": "guess-1"})
            second.probe(dave, BY_LINK, {"token": "guess-2"})
            first.probe(dave, BY_LINK, {"token": "guess-3"})
            refused = second.post(dave, BY_LINK, {"token": "guess-4"})
            assert refused.status_code == 429
            _limited(refused.json())
            with redis_server.client() as client:
                assert list(client.scan_iter(match="sessionhub:rate:link-open:*"))

            # Redis gone: each instance counts on its own meanwhile, and still holds back.
            redis_server.stop()
            for attempt in range(3):
                first.probe(dave, BY_LINK, {"token": f"guess-{5 + attempt}"})
            refused = first.post(dave, BY_LINK, {"token": "guess-8"})
            assert refused.status_code == 429
            _limited(refused.json())
    finally:
        redis_server.stop()
