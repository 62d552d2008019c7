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

# Shares inside the entity only: a link of acme does not open for globex.
CHAT_APPS = """
[[chat_apps]]
id = "team"
name = "Team"
[chat_apps.settings]
auto_generate_titles = false
allow_sharing = true
allow_external_sharing = false
"""

SEND = """mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { session { id } turn { id } } }"""
READ = "query($id: ID!) { session(id: $id) { id } }"
APPEND = """mutation($id: ID!) {
  appendTurn(input: {sessionId: $id, role: USER, content: "hi"}) { id } }"""
SEND_INTO = (
    """mutation($id: ID!) { sendMessage(input: {sessionId: $id, content: "hi"}) { turn { id } } }"""
)
FEEDBACK = """mutation($id: ID!) { addFeedback(turnId: $id, input: {kind: THUMBS_UP}) { id } }"""
GRADE = """mutation($id: ID!) { setVerification(turnId: $id, input: {grade: A}) { id } }"""
SHARE = """mutation($input: ShareInput!) { shareSession(input: $input) { id linkToken } }"""
REVOKE = "mutation($id: ID!) { revokeShare(id: $id) { id } }"
BY_LINK = "query($token: String!) { sessionByShareLink(token: $token) { id } }"

_LITERAL = re.compile(r"'(?:[^']|'')*'")


class Statements:
    """The SQL statements the store runs: the writer's, and the readers' in the order they
    ran (one request's reads run one after another), string literals blanked."""

    def __init__(self, store: Any) -> None:
        self._writer = store._writer._conn
        self._readers = [reader._conn for reader in store._all_readers]
        self._written: list[str] = []
        self._read: list[str] = []
        self._writer.set_trace_callback(self._written.append)
        for reader in self._readers:
            reader.set_trace_callback(self._read.append)

    def during(self, probe: Callable[[], Any]) -> list[str]:
        self._written.clear()
        self._read.clear()
        probe()
        statements = _without_index_merges(self._written) + self._read
        return [_LITERAL.sub("?", s) for s in statements]

    def close(self) -> None:
        for connection in (self._writer, *self._readers):
            connection.set_trace_callback(None)


def _without_index_merges(writer: list[str]) -> list[str]:
    """The writer's statements less the background FTS5 merges (a transaction of their own
    that any earlier write may set off at any time)."""
    kept: list[str] = []
    transaction: list[str] = []
    for statement in writer:
        if statement.startswith("BEGIN"):
            transaction = [statement]
        elif transaction:
            transaction.append(statement)
            if statement in ("COMMIT", "ROLLBACK"):
                if not any("VALUES ('merge'" in s for s in transaction):
                    kept += transaction
                transaction = []
        else:
            kept.append(statement)
    return kept + transaction


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
        data = body.get("data") or {}
        assert all(value is None for value in data.values()), body
        assert all(e["extensions"]["code"] == "NOT_FOUND" for e in body.get("errors", ())), body
        return statements


@pytest.fixture
def world(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[World]:
    chat_apps = tmp_path / "chat_apps.toml"
    chat_apps.write_text(CHAT_APPS)
    settings = settings_factory(chat_apps_file=chat_apps)
    with TestClient(create_app(settings)) as client:
        made = World(client, TokenIssuer(token_config(settings)))
        try:
            yield made
        finally:
            made.statements.close()


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
