"""Retention as a client sees it: a session past its `expires_at` is gone from every
listing, search and lookup, for its owner as for anyone else, even before the cleanup
removes it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sessionhub.domain.clock import new_id
from sessionhub.domain.models import (
    NewTurn,
    Role,
    Session,
    SessionStatus,
    TitleSource,
    TurnRole,
)

SESSION = "query($id: ID!) { session(id: $id) { id } }"
LIST = "{ sessions(filter: {archived: null}, first: 100) { edges { node { id } } } }"
ALL = "{ sessions(filter: {archived: null, allOwners: true}) { edges { node { id } } } }"
SEARCH = 'query { searchSessions(query: "okapi") { edges { node { session { id } } } } }'
PINNED = "{ pinnedSessions { id } }"
MY_TAGS = "{ myTags { tag count } }"
SEND = 'mutation($s: ID!) { sendMessage(input: {sessionId: $s, content: "hi"}) { turn { id } } }'
TAG = 'mutation($s: ID!) { tagSessions(ids: [$s], add: ["x"]) { results { status } } }'


KNOWLEDGE_RETENTION = timedelta(days=730)  # tests/data chat apps: knowledge keeps 730 days


def stored_session(api: Any, owner: str, idle: timedelta, text: str) -> str:
    """A session written straight to the store, last active `idle` ago, expiring as the
    knowledge app's retention says (so that re-applying retention keeps it as written)."""
    components = api.client.app.state.components
    now = components.clock.now() - idle
    session = Session(
        id=new_id(),
        entity_id="acme",
        chat_app_id="knowledge",
        owner_id=owner,
        title=text,
        title_source=TitleSource.MANUAL,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        participants=[owner],
        status=SessionStatus.ACTIVE,
        tags=["zoo"],
        expires_at=now + KNOWLEDGE_RETENTION,
    )
    turn = NewTurn(new_id(), session.id, TurnRole.USER, owner, text, now)

    async def write() -> None:
        await components.store.create_session(session, turn, 100)

    api.client.portal.call(write)
    return session.id


def test_an_expired_session_is_gone_everywhere(api) -> None:
    alice = api.as_("alice", "acme")
    expired = stored_session(
        api, "alice", KNOWLEDGE_RETENTION + timedelta(seconds=1), "Okapi sightings, expired"
    )
    live = stored_session(api, "alice", timedelta(0), "Okapi sightings, live")
    alice.ok("mutation($id: ID!) { pinSession(id: $id) { id } }", {"id": live})

    def ids(body: dict) -> set[str]:
        data = next(iter(body.values()))
        nodes = data if isinstance(data, list) else [e["node"] for e in data["edges"]]
        return {n["session"]["id"] if "session" in n else n["id"] for n in nodes}

    assert alice.ok(SESSION, {"id": expired}) == {"session": None}
    assert alice.ok(SESSION, {"id": live})["session"]["id"] == live
    assert ids(alice.ok(LIST)) == {live}
    assert ids(alice.ok(SEARCH)) == {live}
    assert ids(alice.ok(PINNED)) == {live}
    assert alice.ok(MY_TAGS)["myTags"] == [{"tag": "zoo", "count": 1}]
    admin = api.as_("root", "acme", Role.ADMIN)
    assert ids(admin.ok(ALL)) == {live}
    assert admin.ok(SESSION, {"id": expired}) == {"session": None}
    # Nothing can be done with it either.
    assert alice.error_code(SEND, {"s": expired}) == "NOT_FOUND"
    result = alice.ok(TAG, {"s": expired})["tagSessions"]["results"]
    assert [r["status"] for r in result] == ["NOT_FOUND"]


def test_expiry_follows_the_last_activity_and_the_chat_apps_retention(api) -> None:
    alice = api.as_("alice", "acme")
    fields = "id lastActivityAt expiresAt"
    sent = alice.ok(
        f'mutation {{ sendMessage(input: {{chatAppId: "support", content: "hi"}}) '
        f"{{ session {{ {fields} }} }} }}"
    )["sendMessage"]["session"]
    created = alice.ok(
        f'mutation {{ createSession(input: {{chatAppId: "knowledge"}}) {{ {fields} }} }}'
    )["createSession"]

    def days(session: dict) -> timedelta:
        return datetime.fromisoformat(session["expiresAt"]) - datetime.fromisoformat(
            session["lastActivityAt"]
        )

    assert days(sent) == timedelta(days=90)
    assert days(created) == timedelta(days=730)
    alice.ok(
        'mutation($s: ID!) { appendTurn(input: {sessionId: $s, content: "more"}) { id } }',
        {"s": sent["id"]},
    )
    after = alice.ok(f"query($id: ID!) {{ session(id: $id) {{ {fields} }} }}", {"id": sent["id"]})
    assert days(after["session"]) == timedelta(days=90)
    assert after["session"]["expiresAt"] > sent["expiresAt"]


def test_re_applying_retention_reports_each_chat_app(api) -> None:
    alice = api.as_("alice", "acme")
    stored_session(api, "alice", timedelta(days=1), "old one")
    sessions = api.client.app.state.components.sessions
    applied = api.client.portal.call(sessions.apply_retention)
    assert set(applied) == {"support", "knowledge"} and applied["knowledge"] >= 1
    assert alice.ok(LIST)["sessions"]["edges"]
