"""Without transactions (a standalone server), the MongoDB store writes step by step. These
tests stop a write between two steps, as a crash would, and check that readers see
nothing half-done and that the next write or the recovery sweep finishes it. They run
against mongoeco over the wire (a standalone: no transactions) and reach into the store's
collections on purpose: the states they build cannot be reached through the protocol."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sessionhub.domain.clock import new_id
from sessionhub.domain.errors import LimitExceeded
from sessionhub.domain.models import (
    AuditEvent,
    AuditFilter,
    GranteeKind,
    NewTurn,
    OwnerScope,
    Pin,
    Session,
    SessionFilter,
    Share,
    ShareMode,
    TitleSource,
    TokenUsage,
    Turn,
    TurnRole,
)
from sessionhub.domain.redaction import redact_details
from sessionhub.storage.mongo import MongoStore, codec

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def make_session(**kw) -> Session:
    return Session(
        kw.pop("id", new_id()),
        "acme",
        "support",
        "alice",
        "t",
        TitleSource.MANUAL,
        T0,
        T0,
        T0,
        **kw,
    )


def make_turn(session_id: str, **kw) -> NewTurn:
    return NewTurn(
        new_id(),
        session_id,
        TurnRole.USER,
        "alice",
        kw.pop("content", "hi"),
        T0,
        author_entity_id="acme",
        **kw,
    )


def event(action: str, session_id: str) -> AuditEvent:
    return AuditEvent(new_id(), "acme", "alice", action, f"session:{session_id}", T0)


@pytest.fixture
def store(mongo_store: MongoStore) -> MongoStore:
    assert not mongo_store.transactions
    return mongo_store


async def actions(store: MongoStore) -> list[str]:
    return [e.action for e in await store.list_audit("acme", AuditFilter(), None, 100)]


async def test_a_turn_stored_but_never_counted_is_counted_by_the_next_append(
    store: MongoStore,
) -> None:
    session = make_session()
    await store.create_session(session, make_turn(session.id), 10)
    # The appender of seq 2 died after inserting its turn, before counting it.
    orphan = Turn.numbered(make_turn(session.id, usage=TokenUsage(3, 4, 0.5)), 2, "acme")
    raw = await store._connection.sessions.find_one({"_id": session.id})
    await store._connection.turns.insert_one(codec.turn_doc(orphan, raw))
    turn, stored = await store.append_turn(make_turn(session.id, content="next"), 10)
    assert turn.seq == 3
    assert stored.turn_count == 3
    assert stored.usage == TokenUsage(3, 4, 0.5)
    assert [t.seq for t in await store.list_turns(session.id, limit=10)] == [1, 2, 3]


async def test_an_uncounted_turn_still_counts_against_the_limit(store: MongoStore) -> None:
    session = make_session()
    await store.create_session(session, make_turn(session.id), 2)
    raw = await store._connection.sessions.find_one({"_id": session.id})
    await store._connection.turns.insert_one(
        codec.turn_doc(Turn.numbered(make_turn(session.id), 2, "acme"), raw)
    )
    with pytest.raises(LimitExceeded):
        await store.append_turn(make_turn(session.id), 2)
    assert (await store.get_session(session.id)).turn_count == 2


async def test_an_interrupted_delete_is_invisible_and_finished_by_a_retry(
    store: MongoStore,
) -> None:
    session = make_session()
    await store.create_session(session, make_turn(session.id), 10)
    await store.pin("acme", Pin("alice", session.id, T0))
    first = event("session.deleted", session.id)
    # The delete died right after marking the session.
    await store._connection.sessions.update_one(
        {"_id": session.id},
        {"$set": {"state": "deleting"}, "$push": {"outbox": codec.audit_doc(first)}},
    )
    assert await store.get_session(session.id) is None
    assert await store.list_sessions(OwnerScope("acme", "alice"), SessionFilter(), None, 10) == []
    assert await store.list_pinned("acme", "alice", 10) == []
    assert (
        await store.delete_session(session.id, event("session.deleted", session.id), redact_details)
        is True
    )
    assert await store.list_turns(session.id, limit=10) == []
    assert await store._connection.sessions.find_one({"_id": session.id}) is None
    # The event of the first attempt is recorded, once; the retry's is not added.
    events = await store.list_audit("acme", AuditFilter(), None, 10)
    assert [e.id for e in events] == [first.id]
    assert (
        await store.delete_session(session.id, event("session.deleted", session.id), redact_details)
        is False
    )


async def test_the_sweep_finishes_deletes_and_delivers_outboxes(store: MongoStore) -> None:
    doomed, shared = make_session(), make_session()
    for s in (doomed, shared):
        await store.create_session(s, make_turn(s.id), 10)
    await store._connection.sessions.update_one(
        {"_id": doomed.id},
        {
            "$set": {"state": "deleting"},
            "$push": {"outbox": codec.audit_doc(event("session.deleted", doomed.id))},
        },
    )
    share = Share(
        new_id(), shared.id, "acme", GranteeKind.USER, "acme", "bob", ShareMode.READ, "alice", T0
    )
    await store.create_share(share, event("share.created", shared.id))
    # A revoke died after revoking, before copying its event to the audit trail.
    await store._connection.shares.update_one(
        {"_id": share.id},
        {
            "$set": codec.time_fields("revoked_at", T0),
            "$push": {"outbox": codec.audit_doc(event("share.revoked", shared.id))},
        },
    )
    assert "share.revoked" not in await actions(store)
    await store.expire_due_shares(T0, 10, lambda s: event("share.expired", s.session_id))
    assert await store._connection.sessions.find_one({"_id": doomed.id}) is None
    assert await store.list_turns(doomed.id, limit=10) == []
    assert sorted(await actions(store)) == ["session.deleted", "share.created", "share.revoked"]
    assert await store._connection.shares.find_one({"outbox._id": {"$exists": True}}) is None


async def test_a_session_whose_first_turn_fails_is_not_left_behind(store: MongoStore) -> None:
    session = make_session()
    with pytest.raises(LimitExceeded):
        await store.create_session(session, make_turn(session.id), 0)
    assert await store._connection.sessions.find_one({"_id": session.id}) is None
    assert await store._connection.turns.count_documents({"session_id": session.id}) == 0


async def test_a_hidden_session_abandoned_mid_creation_is_removed(store: MongoStore) -> None:
    session = make_session()
    doc = codec.session_doc(session)
    doc["state"] = "creating"
    await store._connection.sessions.insert_one(doc)
    assert await store.get_session(session.id) is None
    await store.expire_due_shares(T0 + timedelta(minutes=5), 10, lambda s: event("x", "y"))
    assert (
        await store._connection.sessions.find_one({"_id": session.id}) is not None
    )  # maybe in flight
    await store.expire_due_shares(T0 + timedelta(hours=2), 10, lambda s: event("x", "y"))
    assert await store._connection.sessions.find_one({"_id": session.id}) is None


def tagged(session_id: str, tag: str) -> AuditEvent:
    return AuditEvent(
        new_id(), "acme", "alice", "session.tagged", f"session:{session_id}", T0, {"added": [tag]}
    )


async def details_about(store: MongoStore, session_id: str) -> dict[str, dict]:
    events = await store.list_audit("acme", AuditFilter(), None, 100)
    return {e.action: e.details for e in events if e.target == f"session:{session_id}"}


class MarkedAfter:
    """The sessions collection, with `before_mark` run just before the update that marks a
    session for deletion: a concurrent request writing in between."""

    def __init__(self, sessions, before_mark) -> None:
        self._sessions = sessions
        self._before_mark = before_mark

    def __getattr__(self, name: str):
        return getattr(self._sessions, name)

    async def find_one_and_update(self, query, update, *args, **kwargs):
        if update.get("$set", {}).get("state") == "deleting":
            await self._before_mark()
        return await self._sessions.find_one_and_update(query, update, *args, **kwargs)


async def test_an_event_written_just_before_the_mark_is_redacted_with_the_deletion(
    store: MongoStore,
) -> None:
    """Without transactions, an event about the session that reaches the trail just before
    the deletion marks the session (whatever ran before the mark) is redacted all the same:
    the redaction comes after the mark, which no later write gets past."""
    session = make_session()
    await store.create_session(session, make_turn(session.id), 10)

    async def concurrent_tagging() -> None:
        await store.append_audit(tagged(session.id, "secretword"))

    store._connection.sessions = MarkedAfter(store._connection.sessions, concurrent_tagging)
    deleted = event("session.deleted", session.id)
    assert await store.delete_session(session.id, deleted, redact_details)
    assert await details_about(store, session.id) == {
        "session.tagged": {"redacted": True},
        "session.deleted": None,
    }


async def test_a_tag_change_in_the_outbox_when_the_session_is_marked_is_redacted(
    store: MongoStore,
) -> None:
    """A tag change written just before the mark, whose request has not yet copied its
    event from the session's outbox to the trail: the deletion copies and redacts it, and
    the request's own late copy changes nothing."""
    session = make_session()
    await store.create_session(session, make_turn(session.id), 10)
    late = tagged(session.id, "secretword")

    async def tag_change_not_yet_delivered() -> None:
        await store._connection.sessions.update_one(
            {"_id": session.id},
            {"$set": {"tags": ["secretword"]}, "$push": {"outbox": codec.audit_doc(late)}},
        )

    store._connection.sessions = MarkedAfter(
        store._connection.sessions, tag_change_not_yet_delivered
    )
    assert await store.delete_session(
        session.id, event("session.deleted", session.id), redact_details
    )
    await store._audit.put(codec.audit_doc(late), None)
    assert await details_about(store, session.id) == {
        "session.tagged": {"redacted": True},
        "session.deleted": None,
    }


async def test_recovery_redacts_for_a_deletion_that_stopped_after_its_mark(
    store: MongoStore,
) -> None:
    """The process died right after marking the session: recovery (at start, before each
    expiry sweep) finishes the deletion with the rule the store was built with, the
    redaction of the earlier events included, and leaves the deletion's own event whole."""
    session = make_session()
    await store.create_session(session, make_turn(session.id), 10)
    await store.append_audit(tagged(session.id, "secretword"))
    deleted = AuditEvent(
        new_id(), "acme", "alice", "session.deleted", f"session:{session.id}", T0, {"turnCount": 1}
    )
    await store._connection.sessions.update_one(
        {"_id": session.id},
        {"$set": {"state": "deleting"}, "$push": {"outbox": codec.audit_doc(deleted)}},
    )
    await store.expire_due_shares(T0, 10, lambda s: event("share.expired", s.session_id))
    assert await store._connection.sessions.find_one({"_id": session.id}) is None
    assert await details_about(store, session.id) == {
        "session.tagged": {"redacted": True},
        "session.deleted": {"turnCount": 1},
    }


async def test_recovery_delivers_a_tag_changes_event_left_in_the_sessions_outbox(
    store: MongoStore,
) -> None:
    session = make_session()
    await store.create_session(session, make_turn(session.id), 10)
    left = tagged(session.id, "billing")
    # The tagging request died after its update, before copying the event to the trail.
    await store._connection.sessions.update_one(
        {"_id": session.id},
        {"$set": {"tags": ["billing"]}, "$push": {"outbox": codec.audit_doc(left)}},
    )
    await store.expire_due_shares(T0, 10, lambda s: event("share.expired", s.session_id))
    assert await details_about(store, session.id) == {"session.tagged": {"added": ["billing"]}}
    assert await store._connection.sessions.find_one({"outbox._id": {"$exists": True}}) is None


async def test_a_backdated_session_being_created_is_not_taken_for_abandoned(
    store: MongoStore,
) -> None:
    # created_at is the domain's (imports and tests set it in the past); recovery judges
    # abandonment by when the server wrote the session hidden.
    session = make_session()
    now = datetime.now(UTC)
    for written, kept in ((now, True), (now - timedelta(hours=2), False)):
        doc = codec.session_doc(replace(session, id=new_id()))
        doc.update({"state": "creating", codec.CREATING_SINCE: codec.us(written)})
        await store._connection.sessions.insert_one(doc)
        await store.expire_due_shares(T0 + timedelta(days=30), 10, lambda s: event("x", "y"))
        found = await store._connection.sessions.find_one({"_id": doc["_id"]})
        assert (found is not None) is kept
