"""Sharing sessions and the audit trail, through GraphQL as clients use them.

alice@acme owns the sessions. A share grants one of them to a user of acme (USER), to
every internal user of acme (ENTITY), to a user of another entity (EXTERNAL, where the
chat app allows it) or to whoever opens a link with its token (LINK); READ lets the
grantee read, INTERACT also lets them write turns and feedback. Only the owner or an
admin of acme manages a session: renames, deletes, shares, revokes. A share ends at once
when revoked or when its expiry passes. Every share change, link visit, read by a
non-owner and deletion leaves an audit event that auditors of acme page through and
nobody can change.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Role, UserType
from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings, token_config
from tests.conftest import AUDIT, audit_events, database_bytes
from tests.support.clocks import SettableClock

# ---------------------------------------------------------------------------------------
# Documents

SEND = """mutation($input: SendMessageInput!) { sendMessage(input: $input) {
  session { id participants turnCount } turn { id seq authorId content } } }"""
APPEND = "mutation($input: AppendTurnInput!) { appendTurn(input: $input) { id } }"
FEEDBACK = """mutation($t: ID!) { addFeedback(turnId: $t, input: {kind: THUMBS_UP, comment: "useful"}) {
  id feedback { userId kind comment } } }"""
SHARE_FIELDS = """id sessionId granteeKind granteeEntityId granteeUserId mode createdBy createdAt
  expiresAt revokedAt revokedBy live linkToken"""
SHARE = f"mutation($input: ShareInput!) {{ shareSession(input: $input) {{ {SHARE_FIELDS} }} }}"
REVOKE = f"mutation($id: ID!) {{ revokeShare(id: $id) {{ {SHARE_FIELDS} }} }}"
SESSION = """query($id: ID!) { session(id: $id) { id ownerId title pinned participants turnCount
  turns { nodes { seq authorId content } } context { messages { role content } } } }"""
SHARES_OF = f"query($id: ID!) {{ session(id: $id) {{ shares {{ {SHARE_FIELDS} }} }} }}"
BY_LINK = "query($token: String!) { sessionByShareLink(token: $token) { id ownerId title } }"
SHARED = """query($first: Int, $after: String) { sharedWithMe(first: $first, after: $after) {
  edges { cursor node { id ownerId pinned } }
  pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
SHARED_TURNS = """{ sharedWithMe { edges { node { id turns { nodes { content } } } } } }"""
MY_SESSIONS = "{ sessions { edges { node { id } } } }"
PINNED = "{ pinnedSessions { id pinned } }"
PIN = "mutation($id: ID!) { pinSession(id: $id) { id pinned } }"
RENAME = 'mutation($id: ID!) { renameSession(id: $id, title: "Mine now") { id } }'
DELETE = "mutation($id: ID!) { deleteSession(id: $id) }"
ARCHIVE = "mutation($id: ID!) { archiveSession(id: $id) { id } }"
UNARCHIVE = "mutation($id: ID!) { unarchiveSession(id: $id) { id } }"

START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------
# Helpers


def start(caller, app: str = "knowledge", text: str = "What were Q3 revenues?") -> tuple[str, str]:
    """A new session of `caller` with one turn: (session id, turn id)."""
    sent = caller.ok(SEND, {"input": {"chatAppId": app, "content": text}})["sendMessage"]
    return sent["session"]["id"], sent["turn"]["id"]


def share(caller, session_id: str, kind: str, **fields: Any) -> dict:
    return caller.ok(SHARE, {"input": {"sessionId": session_id, "granteeKind": kind, **fields}})[
        "shareSession"
    ]


def share_error(caller, session_id: str, kind: str, **fields: Any) -> str:
    return caller.error_code(
        SHARE, {"input": {"sessionId": session_id, "granteeKind": kind, **fields}}
    )


def visible(caller, session_id: str) -> dict | None:
    return caller.ok(SESSION, {"id": session_id})["session"]


def shared_ids(caller) -> list[str]:
    return [e["node"]["id"] for e in caller.ok(SHARED, {"first": 100})["sharedWithMe"]["edges"]]


def shares_of(caller, session_id: str) -> list[dict]:
    return caller.ok(SHARES_OF, {"id": session_id})["session"]["shares"]


def link_error(caller, token: str) -> tuple[str, str]:
    body = caller.post(BY_LINK, {"token": token})
    assert body.get("errors"), body
    assert body["data"] is None or body["data"]["sessionByShareLink"] is None
    error = body["errors"][0]
    return error["extensions"]["code"], error["message"]


def actions(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["actorId"], e["action"]) for e in events]


def chat_apps_file(tmp_path: Path, name: str, *, external: bool) -> Path:
    path = tmp_path / name
    path.write_text(
        f"""
[[chat_apps]]
id = "knowledge"
name = "Knowledge assistant"
[chat_apps.settings]
allow_sharing = true
allow_external_sharing = {str(external).lower()}

[[chat_apps]]
id = "support"
name = "Customer support"
[chat_apps.settings]
allow_sharing = false
"""
    )
    return path


class Caller:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token

    def post(self, query: str, variables: dict | None = None) -> dict:
        return self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"},
        ).json()

    def ok(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def error_code(self, query: str, variables: dict | None = None) -> str:
        body = self.post(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]["extensions"]["code"]


@dataclass
class Hub:
    """A running app on `settings`, with its clock when the test sets the time."""

    client: TestClient
    issuer: TokenIssuer
    clock: SettableClock | None

    def as_(
        self, user: str, entity: str, *roles: Role, user_type: UserType = UserType.INTERNAL
    ) -> Caller:
        token = self.issuer.issue(user, entity, roles or (Role.USER,), user_type=user_type)
        return Caller(self.client, token)


@contextmanager
def running(settings: Settings, clock: SettableClock | None = None) -> Iterator[Hub]:
    with TestClient(create_app(settings, clock=clock)) as client:
        yield Hub(client, TokenIssuer(token_config(settings)), clock)


@pytest.fixture
def clocked(settings_factory: Callable[..., Settings]) -> Iterator[Hub]:
    """The app on a clock the test moves; the expiry sweep runs every 50 ms."""
    settings = settings_factory(share_expiry_sweep_seconds=0.05)
    with running(settings, SettableClock(START)) as hub:
        yield hub


# ---------------------------------------------------------------------------------------
# USER shares: READ and INTERACT


def test_a_read_share_lets_bob_read_but_not_write_or_manage(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    sid, turn = start(alice, text="What were Q3 revenues?")
    made = share(alice, sid, "USER", userId="bob", mode="READ")
    assert made["granteeKind"] == "USER" and made["mode"] == "READ"
    assert (made["granteeEntityId"], made["granteeUserId"]) == ("acme", "bob")
    assert made["createdBy"] == "alice" and made["live"] is True
    assert made["linkToken"] is None and made["revokedAt"] is None

    title = visible(alice, sid)["title"]
    seen = visible(bob, sid)
    assert seen is not None and seen["ownerId"] == "alice" and seen["title"] == title
    assert [(t["seq"], t["content"]) for t in seen["turns"]["nodes"]] == [
        (1, "What were Q3 revenues?")
    ]
    assert [m["content"] for m in seen["context"]["messages"] if m["role"] == "user"] == [
        "What were Q3 revenues?"
    ]

    # He can see it, so writes are FORBIDDEN, not NOT_FOUND.
    assert bob.error_code(SEND, {"input": {"sessionId": sid, "content": "hi"}}) == "FORBIDDEN"
    assert bob.error_code(APPEND, {"input": {"sessionId": sid, "content": "x"}}) == "FORBIDDEN"
    assert bob.error_code(FEEDBACK, {"t": turn}) == "FORBIDDEN"
    for document in (RENAME, DELETE, ARCHIVE, UNARCHIVE):
        assert bob.error_code(document, {"id": sid}) == "FORBIDDEN", document
    assert share_error(bob, sid, "USER", userId="carol") == "FORBIDDEN"
    assert share_error(bob, sid, "LINK") == "FORBIDDEN"
    assert bob.error_code(REVOKE, {"id": made["id"]}) == "FORBIDDEN"

    # Nothing bob tried took effect.
    mine = visible(alice, sid)
    assert mine["title"] == title and mine["turnCount"] == 1
    assert mine["turns"]["nodes"][0]["content"] == "What were Q3 revenues?"
    assert [(s["id"], s["live"]) for s in shares_of(alice, sid)] == [(made["id"], True)]
    assert shares_of(alice, sid)[0]["linkToken"] is None


def test_pins_stay_per_user_and_shared_sessions_are_not_bobs_own(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    sid, _ = start(alice)
    made = share(alice, sid, "USER", userId="bob")
    assert bob.ok(PIN, {"id": sid})["pinSession"] == {"id": sid, "pinned": True}
    assert visible(bob, sid)["pinned"] is True
    assert visible(alice, sid)["pinned"] is False
    assert alice.ok(PINNED)["pinnedSessions"] == []
    assert bob.ok(PINNED)["pinnedSessions"] == [{"id": sid, "pinned": True}]

    listed = bob.ok(SHARED, {"first": 10})["sharedWithMe"]["edges"]
    assert [(e["node"]["id"], e["node"]["ownerId"], e["node"]["pinned"]) for e in listed] == [
        (sid, "alice", True)
    ]
    assert bob.ok(MY_SESSIONS)["sessions"]["edges"] == []
    assert shared_ids(alice) == []  # her own session is not "shared with" her
    alice.ok(PIN, {"id": sid})
    assert bob.ok("mutation($id: ID!) { unpinSession(id: $id) { pinned } }", {"id": sid}) == {
        "unpinSession": {"pinned": False}
    }
    assert bob.ok(PINNED)["pinnedSessions"] == []
    assert alice.ok(PINNED)["pinnedSessions"] == [{"id": sid, "pinned": True}]
    bob.ok(PIN, {"id": sid})

    # The grant ends: the pin no longer shows the session.
    alice.ok(REVOKE, {"id": made["id"]})
    assert bob.ok(PINNED)["pinnedSessions"] == []
    assert shared_ids(bob) == []


def test_an_interact_share_lets_bob_write_turns_and_feedback(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    sid, turn = start(alice, text="Draft the memo")
    share(alice, sid, "USER", userId="bob", mode="INTERACT")
    sent = bob.ok(SEND, {"input": {"sessionId": sid, "content": "Add a summary"}})["sendMessage"]
    assert (sent["turn"]["seq"], sent["turn"]["authorId"]) == (2, "bob")
    assert sent["session"]["participants"] == ["alice", "bob"]
    rated = bob.ok(FEEDBACK, {"t": turn})["addFeedback"]
    assert rated["feedback"] == [{"userId": "bob", "kind": "THUMBS_UP", "comment": "useful"}]

    mine = visible(alice, sid)
    assert [(t["authorId"], t["content"]) for t in mine["turns"]["nodes"]] == [
        ("alice", "Draft the memo"),
        ("bob", "Add a summary"),
    ]
    assert mine["participants"] == ["alice", "bob"]
    # Interacting is not managing.
    assert bob.error_code(RENAME, {"id": sid}) == "FORBIDDEN"
    assert share_error(bob, sid, "USER", userId="carol") == "FORBIDDEN"


@pytest.mark.parametrize(
    ("user", "entity"),
    [("carol", "acme"), ("bob", "globex"), ("alice", "globex")],
    ids=["carol-of-acme", "bob-of-globex", "alice-of-globex"],
)
def test_a_user_share_reaches_nobody_else(api, user: str, entity: str) -> None:
    alice = api.as_("alice", "acme")
    sid, turn = start(alice)
    made = share(alice, sid, "USER", userId="bob", mode="INTERACT")
    other = api.as_(user, entity)
    assert visible(other, sid) is None
    assert other.error_code(SEND, {"input": {"sessionId": sid, "content": "x"}}) == "NOT_FOUND"
    assert other.error_code(FEEDBACK, {"t": turn}) == "NOT_FOUND"
    for document in (PIN, RENAME, DELETE, ARCHIVE):
        assert other.error_code(document, {"id": sid}) == "NOT_FOUND", document
    assert share_error(other, sid, "USER", userId=user) == "NOT_FOUND"
    assert other.error_code(REVOKE, {"id": made["id"]}) == "NOT_FOUND"
    assert shared_ids(other) == []
    assert other.ok(PINNED)["pinnedSessions"] == []
    # Still live and untouched for alice.
    assert [s["live"] for s in shares_of(alice, sid)] == [True]
    assert visible(alice, sid)["turnCount"] == 1


def test_bob_sees_only_his_own_grant_among_the_shares(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    sid, _ = start(alice)
    to_bob = share(alice, sid, "USER", userId="bob")
    share(alice, sid, "USER", userId="carol")
    share(alice, sid, "LINK")
    assert [s["id"] for s in shares_of(bob, sid)] == [to_bob["id"]]
    assert len(shares_of(alice, sid)) == 3
    assert len(shares_of(api.as_("aud", "acme", Role.AUDITOR), sid)) == 3


# ---------------------------------------------------------------------------------------
# ENTITY and EXTERNAL shares; who may share what


def test_an_entity_share_reaches_internal_users_of_the_entity_only(api) -> None:
    alice = api.as_("alice", "acme")
    sid, _ = start(alice)
    made = share(alice, sid, "ENTITY")
    assert (made["granteeEntityId"], made["granteeUserId"]) == ("acme", None)
    carol = api.as_("carol", "acme")
    assert visible(carol, sid)["ownerId"] == "alice"
    assert shared_ids(carol) == [sid]
    assert carol.error_code(SEND, {"input": {"sessionId": sid, "content": "x"}}) == "FORBIDDEN"

    contractor = api.as_("eve", "acme", user_type=UserType.EXTERNAL)
    assert visible(contractor, sid) is None
    assert shared_ids(contractor) == []
    for user in ("carol", "alice"):
        assert visible(api.as_(user, "globex"), sid) is None
        assert shared_ids(api.as_(user, "globex")) == []
    # An ENTITY share names no one.
    assert share_error(alice, sid, "ENTITY", userId="bob") == "BAD_USER_INPUT"


@pytest.mark.parametrize("user_type", [UserType.EXTERNAL, UserType.INTERNAL])
def test_an_external_share_reaches_that_user_of_that_entity(api, user_type: UserType) -> None:
    alice = api.as_("alice", "acme")
    sid, _ = start(alice, text="Joint roadmap")
    made = share(alice, sid, "EXTERNAL", userId="dan", entityId="partner", mode="INTERACT")
    assert (made["granteeEntityId"], made["granteeUserId"]) == ("partner", "dan")
    dan = api.as_("dan", "partner", user_type=user_type)
    assert visible(dan, sid)["turns"]["nodes"][0]["content"] == "Joint roadmap"
    assert shared_ids(dan) == [sid]
    assert [s["id"] for s in shares_of(dan, sid)] == [made["id"]]
    sent = dan.ok(SEND, {"input": {"sessionId": sid, "content": "Looks good"}})["sendMessage"]
    assert sent["turn"]["authorId"] == "dan"

    for user, entity in (("dan", "globex"), ("erin", "partner"), ("dan", "acme")):
        stranger = api.as_(user, entity, user_type=user_type)
        assert visible(stranger, sid) is None, (user, entity)
        assert shared_ids(stranger) == []
    # dan's reads are filed under acme, naming his entity; partner's auditors see nothing.
    reads = audit_events(api.as_("aud", "acme", Role.AUDITOR), actorId="dan", action="session.read")
    assert reads and all(e["details"]["actorEntityId"] == "partner" for e in reads)
    assert audit_events(api.as_("aud", "partner", Role.AUDITOR)) == []


def test_external_shares_need_another_entity_and_a_user(api) -> None:
    alice = api.as_("alice", "acme")
    sid, _ = start(alice)
    assert share_error(alice, sid, "EXTERNAL", userId="bob", entityId="acme") == "BAD_USER_INPUT"
    assert share_error(alice, sid, "EXTERNAL", userId="dan") == "BAD_USER_INPUT"
    assert share_error(alice, sid, "EXTERNAL", entityId="partner") == "BAD_USER_INPUT"
    assert share_error(alice, sid, "USER", userId="dan", entityId="partner") == "BAD_USER_INPUT"
    assert share_error(alice, sid, "USER", userId="alice") == "BAD_USER_INPUT"
    assert share_error(alice, sid, "LINK", userId="bob") == "BAD_USER_INPUT"
    assert shares_of(alice, sid) == []
    assert visible(api.as_("bob", "acme"), sid) is None


def test_a_chat_app_without_external_sharing_keeps_shares_inside(settings_factory, tmp_path):
    settings = settings_factory(
        chat_apps_file=chat_apps_file(tmp_path, "apps.toml", external=False)
    )
    with running(settings) as hub:
        alice = hub.as_("alice", "acme")
        sid, _ = start(alice)
        code = share_error(alice, sid, "EXTERNAL", userId="dan", entityId="partner")
        assert code == "SHARING_DISABLED"
        # EXTERNAL with the session's own entity is refused either way.
        assert share_error(alice, sid, "EXTERNAL", userId="bob", entityId="acme") in (
            "SHARING_DISABLED",
            "BAD_USER_INPUT",
        )
        assert visible(hub.as_("dan", "partner"), sid) is None
        share(alice, sid, "USER", userId="bob")
        token = share(alice, sid, "LINK")["linkToken"]
        assert [s["granteeKind"] for s in shares_of(alice, sid)] == ["USER", "LINK"]

        # Outside acme the link reads exactly like one that does not exist.
        made_up = link_error(hub.as_("carol", "globex"), "not-a-token")
        assert made_up[0] == "NOT_FOUND"
        assert link_error(hub.as_("carol", "globex"), token) == made_up
        assert visible(hub.as_("carol", "globex"), sid) is None
        assert shared_ids(hub.as_("carol", "globex")) == []
        # Inside acme the link opens.
        carol = hub.as_("carol", "acme")
        assert carol.ok(BY_LINK, {"token": token})["sessionByShareLink"]["id"] == sid
        assert visible(carol, sid) is not None


def test_only_people_of_the_entity_pass_a_session_on(api) -> None:
    """A service (an agent back end) cannot share at all; an external-type user of acme
    may not pass on even a session of their own."""
    agent = api.as_("agent", "acme", Role.SERVICE)
    created = agent.ok(
        'mutation { createSession(input: {chatAppId: "knowledge", onBehalfOf: "alice"}) { id } }'
    )["createSession"]["id"]
    for kind, fields in (
        ("EXTERNAL", {"userId": "dan", "entityId": "partner"}),
        ("LINK", {}),
        ("USER", {"userId": "bob"}),
    ):
        assert share_error(agent, created, kind, **fields) == "FORBIDDEN", kind

    eve = api.as_("eve", "acme", user_type=UserType.EXTERNAL)
    own, _ = start(eve)
    assert share_error(eve, own, "LINK") == "FORBIDDEN"
    assert share_error(eve, own, "EXTERNAL", userId="dan", entityId="partner") == "FORBIDDEN"
    assert shares_of(eve, own) == []
    assert shares_of(api.as_("alice", "acme"), created) == []


def test_a_chat_app_with_sharing_off_refuses_every_kind(api) -> None:
    alice = api.as_("alice", "acme")
    sid, _ = start(alice, app="support")
    for kind, fields in (
        ("USER", {"userId": "bob"}),
        ("ENTITY", {}),
        ("EXTERNAL", {"userId": "dan", "entityId": "partner"}),
        ("LINK", {}),
    ):
        assert share_error(alice, sid, kind, **fields) == "SHARING_DISABLED", kind
        assert share_error(alice, sid, kind, mode="INTERACT", **fields) == "SHARING_DISABLED"
    assert shares_of(alice, sid) == []
    assert visible(api.as_("bob", "acme"), sid) is None
    assert shared_ids(api.as_("bob", "acme")) == []
    assert audit_events(api.as_("aud", "acme", Role.AUDITOR), action="share.created") == []


def test_external_grants_end_when_the_chat_app_stops_external_sharing(settings_factory, tmp_path):
    open_file = chat_apps_file(tmp_path, "open.toml", external=True)
    closed_file = chat_apps_file(tmp_path, "closed.toml", external=False)
    with running(settings_factory(chat_apps_file=open_file)) as hub:
        alice = hub.as_("alice", "acme")
        sid, _ = start(alice)
        share(alice, sid, "EXTERNAL", userId="dan", entityId="partner")
        token = share(alice, sid, "LINK")["linkToken"]
        hub.as_("carol", "globex").ok(BY_LINK, {"token": token})
        assert visible(hub.as_("dan", "partner"), sid) is not None
        assert visible(hub.as_("carol", "globex"), sid) is not None
    with running(settings_factory(chat_apps_file=closed_file)) as hub:
        assert visible(hub.as_("dan", "partner"), sid) is None
        assert visible(hub.as_("carol", "globex"), sid) is None
        assert shared_ids(hub.as_("dan", "partner")) == []
        assert shared_ids(hub.as_("carol", "globex")) == []
        assert link_error(hub.as_("carol", "globex"), token)[0] == "NOT_FOUND"


def test_shared_with_me_stays_walkable_when_grants_lapse(settings_factory, tmp_path) -> None:
    open_file = chat_apps_file(tmp_path, "open.toml", external=True)
    closed_file = chat_apps_file(tmp_path, "closed.toml", external=False)
    with running(settings_factory(chat_apps_file=open_file)) as hub:
        alice = hub.as_("alice", "acme")
        for text in ("one", "two"):
            sid, _ = start(alice, text=text)
            share(alice, sid, "EXTERNAL", userId="dan", entityId="partner")
        assert len(shared_ids(hub.as_("dan", "partner"))) == 2
    with running(settings_factory(chat_apps_file=closed_file)) as hub:
        page = hub.as_("dan", "partner").ok(SHARED, {"first": 1})["sharedWithMe"]
        assert page["edges"] == []
        assert page["pageInfo"]["hasNextPage"] is False, page


# ---------------------------------------------------------------------------------------
# LINK shares


def test_a_link_token_is_given_once_and_never_stored(api, settings: Settings) -> None:
    alice, carol = api.as_("alice", "acme"), api.as_("carol", "acme")
    sid, _ = start(alice, text="Board prep")
    made = share(alice, sid, "LINK", mode="INTERACT")
    token = made["linkToken"]
    assert isinstance(token, str) and len(token) >= 20
    assert (made["granteeEntityId"], made["granteeUserId"]) == (None, None)
    assert [(s["id"], s["linkToken"]) for s in shares_of(alice, sid)] == [(made["id"], None)]
    assert visible(carol, sid) is None  # the link grants only to those who open it

    opened = carol.ok(BY_LINK, {"token": token})["sessionByShareLink"]
    assert opened == {"id": sid, "ownerId": "alice", "title": "Board prep"}
    assert visible(carol, sid)["turns"]["nodes"][0]["content"] == "Board prep"
    sent = carol.ok(SEND, {"input": {"sessionId": sid, "content": "From the link"}})
    assert sent["sendMessage"]["turn"]["authorId"] == "carol"
    assert shared_ids(carol) == [sid]
    assert shares_of(carol, sid) == []
    # Someone who did not open it still sees nothing, nor does a carol of another entity.
    assert visible(api.as_("bob", "acme"), sid) is None
    assert visible(api.as_("carol", "globex"), sid) is None
    # Without a token nobody opens anything.
    anonymous = api.client.post("/graphql", json={"query": BY_LINK, "variables": {"token": token}})
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    stored = database_bytes(settings)
    assert made["id"].encode() in stored  # the share itself is on disk...
    assert token.encode() not in stored  # ...but never its token
    # What is stored (the token's hash) does not open the link.
    assert link_error(carol, hashlib.sha256(token.encode()).hexdigest())[0] == "NOT_FOUND"


def test_a_link_opens_across_entities_only_where_external_sharing_is_on(api) -> None:
    alice = api.as_("alice", "acme")
    sid, _ = start(alice)  # knowledge allows external sharing
    token = share(alice, sid, "LINK")["linkToken"]
    outsider, carol = api.as_("carol", "globex"), api.as_("carol", "acme")
    assert outsider.ok(BY_LINK, {"token": token})["sessionByShareLink"]["id"] == sid
    assert visible(outsider, sid) is not None
    assert outsider.error_code(SEND, {"input": {"sessionId": sid, "content": "x"}}) == "FORBIDDEN"
    carol.ok(BY_LINK, {"token": token})
    assert shared_ids(outsider) == [sid] and shared_ids(carol) == [sid]


def test_a_revoked_link_ends_access_for_those_who_opened_it(api) -> None:
    alice, carol = api.as_("alice", "acme"), api.as_("carol", "acme")
    sid, _ = start(alice)
    made = share(alice, sid, "LINK", mode="INTERACT")
    carol.ok(BY_LINK, {"token": made["linkToken"]})
    assert visible(carol, sid) is not None
    revoked = alice.ok(REVOKE, {"id": made["id"]})["revokeShare"]
    assert revoked["live"] is False and revoked["linkToken"] is None
    assert visible(carol, sid) is None
    assert carol.error_code(SEND, {"input": {"sessionId": sid, "content": "x"}}) == "NOT_FOUND"
    assert shared_ids(carol) == []
    made_up = link_error(carol, "made-up-token")
    assert link_error(carol, made["linkToken"]) == made_up
    assert made_up[0] == "NOT_FOUND"


def test_link_failures_all_read_the_same(clocked: Hub) -> None:
    alice, carol = clocked.as_("alice", "acme"), clocked.as_("carol", "acme")
    sid, _ = start(alice)
    expiring = share(alice, sid, "LINK", expiresAt=(START + timedelta(hours=1)).isoformat())
    revoked = share(alice, sid, "LINK")
    alice.ok(REVOKE, {"id": revoked["id"]})
    carol.ok(BY_LINK, {"token": expiring["linkToken"]})
    assert visible(carol, sid) is not None

    clocked.clock.current = START + timedelta(hours=1, seconds=1)
    assert visible(carol, sid) is None  # the link she opened has expired
    failures = {
        link_error(carol, token)
        for token in (
            expiring["linkToken"],
            revoked["linkToken"],
            "made-up-token",
            "",
            "x" * 500,
        )
    }
    assert len(failures) == 1 and next(iter(failures))[0] == "NOT_FOUND"


# ---------------------------------------------------------------------------------------
# Revocation, expiry, admins


def test_revoking_ends_access_at_once_and_twice_is_harmless(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    sid, _ = start(alice)
    made = share(alice, sid, "USER", userId="bob", mode="INTERACT")
    assert visible(bob, sid) is not None
    first = alice.ok(REVOKE, {"id": made["id"]})["revokeShare"]
    assert first["id"] == made["id"] and first["live"] is False
    assert first["revokedAt"] is not None and first["revokedBy"] == "alice"
    assert visible(bob, sid) is None
    assert bob.error_code(SEND, {"input": {"sessionId": sid, "content": "x"}}) == "NOT_FOUND"
    assert shared_ids(bob) == []

    second = alice.ok(REVOKE, {"id": made["id"]})["revokeShare"]
    assert second == first
    assert [(s["live"], s["revokedAt"]) for s in shares_of(alice, sid)] == [
        (False, first["revokedAt"])
    ]
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    assert len(audit_events(auditor, action="share.revoked")) == 1
    assert alice.error_code(REVOKE, {"id": "0190a1b2-0000-7000-8000-000000000000"}) == "NOT_FOUND"


def test_an_admin_of_the_entity_shares_and_revokes_but_not_another_entitys(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    sid, _ = start(alice)
    admin = api.as_("root", "acme", Role.ADMIN)
    made = share(admin, sid, "USER", userId="bob")
    assert made["createdBy"] == "root"
    assert visible(bob, sid) is not None

    foreign = api.as_("root", "globex", Role.ADMIN)
    assert share_error(foreign, sid, "USER", userId="bob") == "NOT_FOUND"
    assert share_error(foreign, sid, "LINK") == "NOT_FOUND"
    assert foreign.error_code(REVOKE, {"id": made["id"]}) == "NOT_FOUND"
    assert visible(bob, sid) is not None

    revoked = admin.ok(REVOKE, {"id": made["id"]})["revokeShare"]
    assert revoked["revokedBy"] == "root" and revoked["live"] is False
    assert visible(bob, sid) is None
    link = share(admin, sid, "LINK")
    assert link["linkToken"]
    alice.ok(REVOKE, {"id": link["id"]})  # the owner revokes the admin's share too
    assert [s["live"] for s in shares_of(alice, sid)] == [False, False]


def test_a_share_expires_on_time_and_the_sweep_records_it_once(clocked: Hub) -> None:
    alice, bob = clocked.as_("alice", "acme"), clocked.as_("bob", "acme")
    auditor = clocked.as_("aud", "acme", Role.AUDITOR)
    sid, _ = start(alice)
    expires = START + timedelta(hours=1)
    made = share(alice, sid, "USER", userId="bob", expiresAt=expires.isoformat())
    assert datetime.fromisoformat(made["expiresAt"]) == expires
    bob.ok(PIN, {"id": sid})

    clocked.clock.current = START + timedelta(minutes=59)
    assert visible(bob, sid) is not None
    assert shared_ids(bob) == [sid]

    clocked.clock.current = expires + timedelta(seconds=1)
    # At once, whether or not the sweep has run yet.
    assert visible(bob, sid) is None
    assert shared_ids(bob) == []
    assert bob.ok(PINNED)["pinnedSessions"] == []
    assert [s["live"] for s in shares_of(alice, sid)] == [False]

    deadline = time.monotonic() + 5
    while not audit_events(auditor, action="share.expired") and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # several more sweeps
    expired = audit_events(auditor, action="share.expired")
    assert len(expired) == 1, expired
    assert expired[0]["actorId"] == "system" and expired[0]["target"] == f"session:{sid}"
    assert expired[0]["details"]["shareId"] == made["id"]


def test_an_expiry_must_lie_in_the_future(clocked: Hub) -> None:
    alice = clocked.as_("alice", "acme")
    sid, _ = start(alice)
    for moment in (START - timedelta(seconds=1), START):
        code = share_error(alice, sid, "USER", userId="bob", expiresAt=moment.isoformat())
        assert code == "BAD_USER_INPUT", moment
    assert shares_of(alice, sid) == []


def test_an_expiry_without_a_time_zone_is_bad_input(api) -> None:
    alice = api.as_("alice", "acme")
    sid, _ = start(alice)
    assert (
        share_error(alice, sid, "USER", userId="bob", expiresAt="2099-01-01T00:00:00")
        == "BAD_USER_INPUT"
    )


# ---------------------------------------------------------------------------------------
# sharedWithMe


def test_shared_with_me_lists_newest_share_first_once_each_in_pages(clocked: Hub) -> None:
    alice, bob = clocked.as_("alice", "acme"), clocked.as_("bob", "acme")
    sids: list[str] = []
    share_ids: dict[str, str] = {}
    for i in range(5):
        clocked.clock.current = START + timedelta(minutes=i)
        sid, _ = start(alice, text=f"session {i}")
        sids.append(sid)
        expiry = (START + timedelta(minutes=30)).isoformat() if i == 2 else None
        share_ids[sid] = share(alice, sid, "USER", userId="bob", expiresAt=expiry)["id"]
    clocked.clock.current = START + timedelta(minutes=10)
    carols, _ = start(clocked.as_("carol", "acme"), text="carol's")
    share(clocked.as_("carol", "acme"), carols, "USER", userId="bob")
    clocked.clock.current = START + timedelta(minutes=11)
    again = share(alice, sids[1], "ENTITY")  # s1 shared a second time, most recently
    clocked.clock.current = START + timedelta(minutes=12)
    share(alice, sids[4], "USER", userId="carol")  # not for bob

    def walk(first: int) -> list[str]:
        seen: list[str] = []
        after = None
        for number in range(20):
            page = bob.ok(SHARED, {"first": first, "after": after})["sharedWithMe"]
            assert page["pageInfo"]["hasPreviousPage"] is (number > 0)
            assert len(page["edges"]) <= first
            seen += [e["node"]["id"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return seen
            after = page["pageInfo"]["endCursor"]
        raise AssertionError("sharedWithMe never ended")

    expected = [sids[1], carols, sids[4], sids[3], sids[2], sids[0]]
    assert walk(100) == expected
    assert walk(2) == expected
    assert walk(1) == expected

    alice.ok(REVOKE, {"id": share_ids[sids[3]]})
    alice.ok(REVOKE, {"id": again["id"]})  # s1 falls back to its first share's time
    clocked.clock.current = START + timedelta(minutes=31)  # s2's share has expired
    expected = [carols, sids[4], sids[1], sids[0]]
    assert walk(100) == expected
    assert walk(3) == expected
    assert walk(1) == expected


# ---------------------------------------------------------------------------------------
# The audit trail


def test_the_audit_trail_of_a_sharing_story(api) -> None:
    alice, bob, carol = api.as_("alice", "acme"), api.as_("bob", "acme"), api.as_("carol", "acme")
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    sid, _ = start(alice)
    other, _ = start(alice, text="Another one")
    to_bob = share(alice, sid, "USER", userId="bob")
    share(alice, other, "USER", userId="bob")
    visible(alice, sid)  # the owner's reads are not audited
    visible(bob, sid)
    link = share(alice, sid, "LINK")
    alice.ok(BY_LINK, {"token": link["linkToken"]})  # the owner opening her own link
    carol.ok(BY_LINK, {"token": link["linkToken"]})
    alice.ok(REVOKE, {"id": link["id"]})
    alice.ok(DELETE, {"id": sid})

    events = audit_events(auditor, page_size=2)
    assert len({e["id"] for e in events}) == len(events)
    assert events == audit_events(auditor, page_size=100)
    assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
    about_sid = [e for e in events if e["target"] == f"session:{sid}"]
    assert sorted(actions(about_sid)) == sorted(
        [
            ("alice", "share.created"),
            ("alice", "share.created"),
            ("bob", "session.read"),
            ("carol", "share.opened"),
            ("carol", "session.read"),
            ("alice", "share.revoked"),
            ("alice", "session.deleted"),
        ]
    )
    assert actions(about_sid)[0] == ("alice", "session.deleted")
    opened = next(e for e in about_sid if e["action"] == "share.opened")
    assert opened["details"]["shareId"] == link["id"]
    created = [e for e in about_sid if e["action"] == "share.created"]
    assert {e["details"]["shareId"] for e in created} == {to_bob["id"], link["id"]}
    assert {e["details"]["granteeKind"] for e in created} == {"USER", "LINK"}

    # Filters.
    assert audit_events(auditor, sessionId=sid) == about_sid
    assert actions(audit_events(auditor, sessionId=other)) == [("alice", "share.created")]
    assert actions(audit_events(auditor, actorId="carol")) == [
        ("carol", "session.read"),
        ("carol", "share.opened"),
    ]
    assert len(audit_events(auditor, action="share.created")) == 3
    assert actions(audit_events(auditor, action="share.opened")) == [("carol", "share.opened")]
    assert audit_events(auditor, actorId="alice", action="session.read") == []
    assert actions(audit_events(auditor, actorId="bob", sessionId=sid)) == [("bob", "session.read")]

    # Who may read the trail.
    assert audit_events(api.as_("boss", "acme", Role.ENTITY_ADMIN)) == events
    assert audit_events(api.as_("aud", "globex", Role.AUDITOR)) == []
    assert alice.error_code(AUDIT) == "FORBIDDEN"
    assert api.as_("agent", "acme", Role.SERVICE).error_code(AUDIT) == "FORBIDDEN"


def test_the_audit_trail_filters_by_time(clocked: Hub) -> None:
    alice, bob = clocked.as_("alice", "acme"), clocked.as_("bob", "acme")
    auditor = clocked.as_("aud", "acme", Role.AUDITOR)
    sid, _ = start(alice)
    made = share(alice, sid, "USER", userId="bob")  # at START
    clocked.clock.current = START + timedelta(hours=1)
    visible(bob, sid)
    clocked.clock.current = START + timedelta(hours=2)
    alice.ok(REVOKE, {"id": made["id"]})

    def between(since: datetime | None, until: datetime | None) -> list[str]:
        window = {"from": since and since.isoformat(), "to": until and until.isoformat()}
        return [e["action"] for e in audit_events(auditor, **window)]

    hour = timedelta(hours=1)
    assert between(None, None) == ["share.revoked", "session.read", "share.created"]
    assert between(START + hour, START + 2 * hour) == ["session.read"]  # from inclusive
    assert between(START + hour, None) == ["share.revoked", "session.read"]
    assert between(None, START + hour) == ["share.created"]  # to exclusive
    assert between(START + 3 * hour, None) == []
    code = auditor.error_code(
        AUDIT,
        {"filter": {"from": (START + hour).isoformat(), "to": START.isoformat()}},
    )
    assert code == "BAD_USER_INPUT"


def test_an_audit_window_without_a_time_zone_is_bad_input(api) -> None:
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    code = auditor.error_code(AUDIT, {"filter": {"from": "2026-01-01T00:00:00"}})
    assert code == "BAD_USER_INPUT"


def test_reading_turns_through_shared_with_me_is_audited(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    sid, _ = start(alice, text="Confidential numbers")
    share(alice, sid, "USER", userId="bob")
    nodes = bob.ok(SHARED_TURNS)["sharedWithMe"]["edges"]
    assert nodes[0]["node"]["turns"]["nodes"][0]["content"] == "Confidential numbers"
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    assert audit_events(auditor, actorId="bob", sessionId=sid) != []


def test_audit_events_cannot_be_changed_or_deleted(api, settings: Settings) -> None:
    alice = api.as_("alice", "acme")
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    sid, _ = start(alice)
    share(alice, sid, "USER", userId="bob")
    visible(api.as_("bob", "acme"), sid)
    alice.ok(DELETE, {"id": sid})
    before = audit_events(auditor)
    assert {e["action"] for e in before} == {"share.created", "session.read", "session.deleted"}

    # No mutation touches the trail (deleteSession only says that one remains).
    names = [
        f["name"]
        for f in alice.ok("{ __schema { mutationType { fields { name } } } }")["__schema"][
            "mutationType"
        ]["fields"]
    ]
    assert {"shareSession", "revokeShare", "deleteSession"} <= set(names)
    assert [n for n in names if "audit" in n.lower()] == []


@pytest.mark.sqlite_only("the append-only triggers guard SQLite's file; MongoDB has no trigger")
def test_the_sqlite_audit_table_refuses_changes(api, settings: Settings) -> None:
    alice = api.as_("alice", "acme")
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    sid, _ = start(alice)
    alice.ok(DELETE, {"id": sid})
    before = audit_events(auditor)
    with sqlite3.connect(settings.sqlite_path, timeout=5) as db:
        assert db.execute("SELECT count(*) FROM audit").fetchone()[0] == len(before)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit SET actor_id = 'nobody'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit")
    db.close()
    assert audit_events(auditor) == before
