"""Retention as a client sees it: a session past its `expires_at` is gone from every
listing, search and lookup, for its owner as for anyone else, even before the cleanup
removes it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.clock import new_id
from sessionhub.domain.models import (
    NewTurn,
    Role,
    Session,
    SessionStatus,
    TitleSource,
    TurnRole,
)
from sessionhub.server.app import create_app
from sessionhub.server.settings import token_config
from tests.conftest import Api

SESSION = "query($id: ID!) { session(id: $id) { id } }"
LIST = "{ sessions(filter: {archived: null}, first: 100) { edges { node { id } } } }"
ALL = "{ sessions(filter: {archived: null, allOwners: true}) { edges { node { id } } } }"
SEARCH = 'query { searchSessions(query: "okapi") { edges { node { session { id } } } } }'
PINNED = "{ pinnedSessions { id } }"
MY_TAGS = "{ myTags { tag count } }"
SEND = 'mutation($s: ID!) { sendMessage(input: {sessionId: $s, content: "hi"}) { turn { id } } }'
TAG = 'mutation($s: ID!) { tagSessions(ids: [$s], add: ["x"]) { results { status } } }'


KNOWLEDGE_RETENTION = timedelta(days=730)  # tests/data chat apps: knowledge keeps 730 days


def stored_session(api: Any, owner: str, idle: timedelta, text: str, entity: str = "acme") -> str:
    """A session written straight to the store, last active `idle` ago, expiring as the
    knowledge app's retention says (so that re-applying retention keeps it as written)."""
    components = api.client.app.state.components
    now = components.services.clock.now() - idle
    session = Session(
        id=new_id(),
        entity_id=entity,
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
    turn = NewTurn(new_id(), session.id, TurnRole.USER, owner, text, now, author_entity_id=entity)

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
    sessions = api.client.app.state.components.services.sessions
    applied = api.client.portal.call(sessions.apply_retention)
    assert set(applied) == {"support", "knowledge"} and applied["knowledge"] >= 1
    assert alice.ok(LIST)["sessions"]["edges"]


RUN = """mutation($app: ID, $dry: Boolean!) {
  runRetention(chatAppId: $app, dryRun: $dry) { dryRun removed turns chatApps { chatAppId removed turns } }
}"""
AUDIT = '{ auditLog(filter: {action: "session.expired"}) { edges { node { actorId target details } } } }'


def test_run_retention_removes_the_admins_entitys_expired_sessions(api) -> None:
    idle = KNOWLEDGE_RETENTION + timedelta(seconds=1)
    expired = [stored_session(api, "alice", idle, f"expired {i}") for i in range(2)]
    live = stored_session(api, "alice", timedelta(0), "live")
    elsewhere = stored_session(api, "gina", idle, "globex expired", entity="globex")
    store = api.client.app.state.components.store
    admin = api.as_("root", "acme", Role.ADMIN)

    report = {"dryRun": True, "removed": 2, "turns": 2}
    report["chatApps"] = [{"chatAppId": "knowledge", "removed": 2, "turns": 2}]
    assert admin.ok(RUN, {"dry": True})["runRetention"] == report
    assert all(api.client.portal.call(store.get_session, i) for i in expired)
    assert admin.ok(RUN, {"app": "support", "dry": False})["runRetention"]["removed"] == 0

    assert admin.ok(RUN, {"app": "knowledge", "dry": False})["runRetention"] == {
        **report,
        "dryRun": False,
    }
    for session_id in expired:
        assert api.client.portal.call(store.get_session, session_id) is None
    assert api.client.portal.call(store.get_session, live) is not None
    # Another entity's sessions are not this admin's to remove.
    assert api.client.portal.call(store.get_session, elsewhere) is not None
    events = [e["node"] for e in admin.ok(AUDIT)["auditLog"]["edges"]]
    assert sorted(e["target"] for e in events) == sorted(f"session:{i}" for i in expired)
    assert {e["actorId"] for e in events} == {"system"}
    assert events[0]["details"] == {"chatAppId": "knowledge", "turnCount": 1}
    assert admin.ok(RUN, {"dry": False})["runRetention"]["removed"] == 0


def test_run_retention_is_for_admins_only(api) -> None:
    for roles in ([], [Role.ENTITY_ADMIN], [Role.AUDITOR], [Role.SERVICE]):
        caller = api.as_("someone", "acme", *roles)
        assert caller.error_code(RUN, {"dry": True}) == "FORBIDDEN", roles


def test_the_server_removes_expired_sessions_on_its_interval(settings_factory) -> None:
    settings = settings_factory(retention_interval_seconds=0.05)
    with TestClient(create_app(settings)) as client:
        api = Api(client, TokenIssuer(token_config(settings)))
        idle = KNOWLEDGE_RETENTION + timedelta(seconds=1)
        expired = stored_session(api, "alice", idle, "expired")
        live = stored_session(api, "alice", timedelta(0), "live")
        store = client.app.state.components.store
        deadline = time.monotonic() + 10
        while client.portal.call(store.get_session, expired) is not None:
            assert time.monotonic() < deadline, "the retention job did not run"
            time.sleep(0.02)
        assert client.portal.call(store.get_session, live) is not None


def test_retention_interval_defaults_to_an_hour_and_zero_disables(settings_factory) -> None:
    assert settings_factory().retention_interval_seconds == 3600
    assert settings_factory(retention_interval_seconds=0).retention_interval_seconds == 0
