"""The Store contract: what every backend must do, written against the protocol only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sessionhub.domain.clock import new_id
from sessionhub.domain.errors import Conflict, LimitExceeded, NotFound
from sessionhub.domain.models import (
    AuditEvent,
    AuditFilter,
    EntityTemplate,
    Feedback,
    FeedbackKind,
    Grade,
    GranteeKind,
    GranteeScope,
    KeysetCursor,
    NewTurn,
    OwnerScope,
    Person,
    Pin,
    Session,
    SessionCursor,
    SessionFilter,
    SessionStatus,
    SessionTemplate,
    Share,
    ShareMode,
    StarterTurn,
    TitleSource,
    TokenUsage,
    ToolInvocation,
    ToolStatus,
    TurnRole,
    TurnText,
    Verification,
)
from sessionhub.domain.ports import Store
from sessionhub.domain.redaction import redact_details
from sessionhub.domain.removals import ExpirySweep

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def make_session(
    *, entity: str = "acme", owner: str = "alice", app: str = "support", at: datetime = T0, **kw
) -> Session:
    return Session(
        id=kw.pop("id", new_id()),
        entity_id=entity,
        chat_app_id=app,
        owner_id=owner,
        title=kw.pop("title", "A session"),
        title_source=kw.pop("title_source", TitleSource.MANUAL),
        created_at=at,
        updated_at=at,
        last_activity_at=at,
        participants=[owner],
        status=SessionStatus.ACTIVE,
        **kw,
    )


def make_turn(
    session_id: str, *, author: str = "alice", entity: str = "acme", at: datetime = T0, **kw
) -> NewTurn:
    """A turn by `author` of `entity` (an external grantee's when it is not the session's)."""
    return NewTurn(
        id=kw.pop("id", new_id()),
        session_id=session_id,
        role=kw.pop("role", TurnRole.USER),
        author_id=author,
        content=kw.pop("content", "hello"),
        created_at=at,
        author_entity_id=entity,
        **kw,
    )


def audit_event(action: str = "session.deleted", target: str = "session:x") -> AuditEvent:
    return AuditEvent(new_id(), "acme", "alice", action, target, T0, {"n": 1})


async def test_a_session_reads_back_as_written(store: Store) -> None:
    session = make_session(
        tags=["billing", "urgent"],
        agent_context={"systemPrompt": "Be brief", "variables": {"plan": "pro"}},
        metadata={"source": "web", "nested": [1, 2.5, None, True]},
        # Far ahead: a backend that enforces expiry itself (a TTL index) must not drop it.
        expires_at=T0 + timedelta(days=36_500),
        template_id="tpl-1",
        archived_at=T0 + timedelta(hours=1),
        usage=TokenUsage(10, 20, 0.5),
    )
    await store.create_session(session, None, 10)
    assert await store.get_session(session.id) == session


async def test_unknown_session_is_none(store: Store) -> None:
    assert await store.get_session("no-such-session") is None


async def test_a_turn_reads_back_equal_field_by_field(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    new = make_turn(
        session.id,
        role=TurnRole.ASSISTANT,
        content="Here is what I found: ünïcödé ✓ and emoji 🚀",
        parts=[{"type": "text", "text": "Here"}, {"type": "image", "url": "file:///x.png"}],
        tool_invocations=[
            ToolInvocation(
                id="call-1",
                name="search_kb",
                input={"query": "reset password", "limit": 5},
                output={"hits": [{"id": 1, "score": 0.93}]},
                status=ToolStatus.SUCCEEDED,
                error=None,
                started_at=T0 - timedelta(milliseconds=250),
                duration_ms=212.5,
            ),
            ToolInvocation(
                id="call-2",
                name="send_email",
                input={"to": "x"},
                output=None,
                status=ToolStatus.FAILED,
                error="SMTP timeout",
                started_at=T0,
                duration_ms=3000.0,
            ),
        ],
        trace={"steps": [{"thought": "look it up", "ms": 12}]},
        insights={"intent": "password_reset", "sentiment": -0.2},
        metadata={"model": "gpt-x", "temperature": 0.2},
        usage=TokenUsage(input_tokens=1200, output_tokens=340, cost=0.0123),
    )
    turn, _ = await store.append_turn(new, 10)
    assert turn.seq == 1
    read = await store.get_turn(new.id)
    assert read == turn
    assert read.tool_invocations[1].error == "SMTP timeout"
    assert read.created_at == T0


async def test_first_turn_is_created_with_its_session_atomically(store: Store) -> None:
    session = make_session()
    stored, turn = await store.create_session(session, make_turn(session.id), 10)
    assert turn is not None and turn.seq == 1
    assert stored.turn_count == 1


async def test_a_failed_session_insert_leaves_nothing(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    duplicate = make_session(id=session.id, owner="bob")
    with pytest.raises(Conflict):
        await store.create_session(duplicate, make_turn(session.id, content="lost?"), 10)
    assert (await store.get_session(session.id)).owner_id == "alice"
    assert await store.list_turns(session.id, limit=10) == []


@pytest.mark.labelled_conflicts
async def test_seq_counts_up_without_gaps_under_concurrent_appends(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 1000)
    turns = await asyncio.gather(
        *(store.append_turn(make_turn(session.id, content=f"m{i}"), 1000) for i in range(60))
    )
    assert sorted(t.seq for t, _ in turns) == list(range(1, 61))
    stored = await store.list_turns(session.id, limit=100)
    assert [t.seq for t in stored] == list(range(1, 61))
    assert (await store.get_session(session.id)).turn_count == 60


async def test_appending_past_the_history_limit_stores_nothing(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 2)
    await store.append_turn(make_turn(session.id), 2)
    await store.append_turn(make_turn(session.id), 2)
    with pytest.raises(LimitExceeded):
        await store.append_turn(make_turn(session.id, content="third"), 2)
    assert [t.content for t in await store.list_turns(session.id, limit=10)] == ["hello", "hello"]
    assert (await store.get_session(session.id)).turn_count == 2


async def test_appending_to_a_missing_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.append_turn(make_turn("missing"), 10)


async def test_append_updates_activity_usage_and_participants(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    later = T0 + timedelta(minutes=5)
    _, updated = await store.append_turn(
        make_turn(session.id, author="bob", at=later, usage=TokenUsage(5, 7, 0.25)), 10
    )
    assert updated.last_activity_at == later
    assert updated.participants == ["alice", "bob"]
    assert updated.usage == TokenUsage(5, 7, 0.25)


async def test_turn_pages_forwards_and_backwards(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 100)
    for i in range(10):
        await store.append_turn(make_turn(session.id, content=f"m{i + 1}"), 100)
    newest = await store.list_turns(session.id, limit=3, newest_first=True)
    assert [t.seq for t in newest] == [10, 9, 8]
    older = await store.list_turns(session.id, before_seq=8, limit=3, newest_first=True)
    assert [t.seq for t in older] == [7, 6, 5]
    forward = await store.list_turns(session.id, after_seq=7, limit=5)
    assert [t.seq for t in forward] == [8, 9, 10]


async def test_conversation_is_what_was_said_cut_short(store: Store) -> None:
    """What titles read: user and assistant turns that say something, oldest or newest
    first, each cut to its first characters; tool and system turns are left out."""
    session = make_session()
    await store.create_session(session, None, 100)
    said = [
        (TurnRole.SYSTEM, "You are a helpful assistant"),
        (TurnRole.USER, "My printer jams " + "again " * 50),
        (TurnRole.ASSISTANT, "Open the rear tray"),
        (TurnRole.TOOL, "printer status: jammed"),
        (TurnRole.USER, "   "),
        (TurnRole.ASSISTANT, "Then pull the paper out"),
        (TurnRole.USER, "Thanks, it works"),
    ]
    for role, content in said:
        await store.append_turn(make_turn(session.id, role=role, content=content), 100)
    oldest = await store.conversation(session.id, limit=2, chars=16)
    assert oldest == [
        TurnText(TurnRole.USER, "My printer jams "),
        TurnText(TurnRole.ASSISTANT, "Open the rear tr"),
    ]
    newest = await store.conversation(session.id, limit=3, newest_first=True, chars=100)
    assert newest == [
        TurnText(TurnRole.USER, "Thanks, it works"),
        TurnText(TurnRole.ASSISTANT, "Then pull the paper out"),
        TurnText(TurnRole.ASSISTANT, "Open the rear tray"),
    ]
    assert await store.conversation("missing", limit=5, chars=10) == []


async def test_rename_manual_wins_over_auto(store: Store) -> None:
    session = make_session(title=None, title_source=TitleSource.PENDING)
    await store.create_session(session, None, 10)
    auto = await store.rename_session(session.id, "Router setup", TitleSource.AUTO, T0)
    assert (auto.title, auto.title_source) == ("Router setup", TitleSource.AUTO)
    manual = await store.rename_session(session.id, "My router", TitleSource.MANUAL, T0)
    assert manual.title_source is TitleSource.MANUAL
    # Nothing written: None, not the row as it is.
    assert await store.rename_session(session.id, "Something else", TitleSource.AUTO, T0) is None
    assert (await store.get_session(session.id)).title == "My router"
    assert await store.rename_session("missing", "x", TitleSource.MANUAL, T0) is None


async def test_a_title_compare_and_set_that_finds_another_jobs_title_says_it_wrote_nothing(
    store: Store,
) -> None:
    """Two AUTO title jobs read version 0; the first one's title lands (version 1, AUTO).
    The second one's compare-and-set at version 0 writes nothing and answers None: the row
    as it is now (AUTO, version 1 = 0 + 1) looks exactly like its own success."""
    session = make_session(title=None, title_source=TitleSource.PENDING)
    await store.create_session(session, None, 10)
    first = await store.rename_session(
        session.id, "Router setup", TitleSource.AUTO, T0, if_title_version=0
    )
    assert (first.title, first.title_source, first.title_version) == (
        "Router setup",
        TitleSource.AUTO,
        1,
    )
    late = await store.rename_session(
        session.id, "Wifi troubles", TitleSource.AUTO, T0, if_title_version=0
    )
    assert late is None
    stored = await store.get_session(session.id)
    assert (stored.title, stored.title_version) == ("Router setup", 1)
    assert (
        await store.rename_session("missing", "x", TitleSource.AUTO, T0, if_title_version=0) is None
    )


async def test_verification_and_feedback(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    turn, _ = await store.append_turn(make_turn(session.id, role=TurnRole.ASSISTANT), 10)
    verification = Verification(
        Grade.B, 0.8, "mostly right", T0, "grader", verified_by_entity_id="acme"
    )
    graded = await store.set_verification(turn.id, verification)
    assert graded.verification == verification
    first = Feedback("bob", FeedbackKind.THUMBS_DOWN, "wrong", T0, entity_id="acme")
    await store.add_feedback(turn.id, first)
    await store.add_feedback(
        turn.id, Feedback("carol", FeedbackKind.HALLUCINATION, None, T0, entity_id="acme")
    )
    replaced = await store.add_feedback(
        turn.id, Feedback("bob", FeedbackKind.THUMBS_DOWN, "really wrong", T0, entity_id="acme")
    )
    assert [(f.user_id, f.comment) for f in replaced.feedback] == [
        ("carol", None),
        ("bob", "really wrong"),
    ]
    assert await store.set_verification("missing", verification) is None
    assert await store.add_feedback("missing", first) is None


# People of other entities: a user id names a person only with its entity


async def test_same_user_id_of_two_entities_are_two_people_in_a_session(store: Store) -> None:
    """acme's bob and globex's bob (an external grantee) each write, give feedback and are
    listed, and nothing of one replaces or merges with the other's."""
    session = make_session(app="knowledge")
    await store.create_session(session, make_turn(session.id, content="question"), 10)
    ours, _ = await store.append_turn(make_turn(session.id, author="bob", content="ours"), 10)
    theirs, stored = await store.append_turn(
        make_turn(session.id, author="bob", entity="globex", content="theirs"), 10
    )
    assert stored.participants == ["alice", "bob"]
    assert stored.external_participants == [Person("globex", "bob")]
    assert stored.people == [
        Person("acme", "alice"),
        Person("acme", "bob"),
        Person("globex", "bob"),
    ]
    # A second turn by either adds nobody.
    _, again = await store.append_turn(
        make_turn(session.id, author="bob", entity="globex", content="more"), 10
    )
    assert again.people == stored.people
    assert await store.get_session(session.id) == again

    read = {t.id: t for t in await store.list_turns(session.id, limit=10)}
    assert (read[ours.id].author, read[ours.id].external_author) == (Person("acme", "bob"), False)
    assert (read[theirs.id].author, read[theirs.id].external_author) == (
        Person("globex", "bob"),
        True,
    )
    assert read[theirs.id] == theirs and await store.get_turn(theirs.id) == theirs

    for entity in ("acme", "globex"):
        await store.add_feedback(
            ours.id, Feedback("bob", FeedbackKind.THUMBS_UP, entity, T0, entity_id=entity)
        )
    rated = await store.add_feedback(
        ours.id, Feedback("bob", FeedbackKind.THUMBS_UP, "globex again", T0, entity_id="globex")
    )
    assert [(f.given_by, f.comment) for f in rated.feedback] == [
        (Person("acme", "bob"), "acme"),
        (Person("globex", "bob"), "globex again"),
    ]
    assert (await store.get_turn(ours.id)).feedback == rated.feedback

    by_their_agent = Verification(Grade.A, None, None, T0, "bob", verified_by_entity_id="globex")
    graded = await store.set_verification(ours.id, by_their_agent)
    assert graded.verification.verifier == Person("globex", "bob")
    assert (await store.get_turn(ours.id)).verification == by_their_agent


async def test_listing_is_scoped_ordered_and_keyset_paginated(store: Store) -> None:
    ids = []
    for i in range(7):
        s = make_session(at=T0 + timedelta(minutes=i))
        ids.append(s.id)
        await store.create_session(s, None, 10)
    await store.create_session(make_session(owner="bob"), None, 10)
    await store.create_session(make_session(entity="globex"), None, 10)
    scope = OwnerScope("acme", "alice")
    first = await store.list_sessions(scope, SessionFilter(), None, 3)
    assert [s.id for s in first] == ids[::-1][:3]
    cursor = SessionCursor(first[-1].last_activity_at, first[-1].id)
    # A session that arrives between pages lands before page one, not in page two.
    await store.create_session(make_session(at=T0 + timedelta(hours=1)), None, 10)
    second = await store.list_sessions(scope, SessionFilter(), cursor, 10)
    assert [s.id for s in second] == ids[::-1][3:]
    assert all(s.owner_id == "alice" and s.entity_id == "acme" for s in first + second)


async def test_listing_with_equal_activity_times_breaks_ties_by_id(store: Store) -> None:
    made = [make_session() for _ in range(5)]
    for s in made:
        await store.create_session(s, None, 10)
    scope = OwnerScope("acme", "alice")
    seen = []
    cursor = None
    while True:
        page = await store.list_sessions(scope, SessionFilter(), cursor, 2)
        if not page:
            break
        seen += [s.id for s in page]
        cursor = SessionCursor(page[-1].last_activity_at, page[-1].id)
    assert seen == sorted((s.id for s in made), reverse=True)


async def test_listing_filters(store: Store) -> None:
    plain = make_session()
    tagged = make_session(tags=["vip"], app="knowledge")
    archived = make_session(archived_at=T0)
    for s in (plain, tagged, archived):
        await store.create_session(s, None, 10)
    scope = OwnerScope("acme", "alice")

    async def ids(f: SessionFilter) -> set[str]:
        return {s.id for s in await store.list_sessions(scope, f, None, 50)}

    assert await ids(SessionFilter()) == {plain.id, tagged.id}
    assert await ids(SessionFilter(archived=True)) == {archived.id}
    assert await ids(SessionFilter(archived=None)) == {plain.id, tagged.id, archived.id}
    assert await ids(SessionFilter(tag="vip")) == {tagged.id}
    assert await ids(SessionFilter(chat_app_ids=("knowledge",))) == {tagged.id}
    assert await ids(SessionFilter(chat_app_ids=("support", "knowledge"))) == {plain.id, tagged.id}


async def test_archive_and_unarchive(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    archived = await store.set_archived(session.id, T0, T0)
    assert archived.archived_at == T0
    restored = await store.set_archived(session.id, None, T0)
    assert restored.archived_at is None


async def test_set_tags_replaces_them_for_reads_and_the_tag_filter(store: Store) -> None:
    session = make_session(tags=["old", "keep"])
    other = make_session(tags=["old"])
    for s in (session, other):
        await store.create_session(s, None, 10)
    later = T0 + timedelta(minutes=5)
    tagged = await store.set_tags(session.id, ["keep", "new"], later)
    assert tagged is not None and tagged.tags == ["keep", "new"]
    assert tagged.updated_at == later
    assert (await store.get_session(session.id)).tags == ["keep", "new"]
    scope = OwnerScope("acme", "alice")

    async def ids(tag: str) -> set[str]:
        return {s.id for s in await store.list_sessions(scope, SessionFilter(tag=tag), None, 50)}

    assert await ids("new") == {session.id}
    assert await ids("old") == {other.id}
    cleared = await store.set_tags(session.id, [], later)
    assert cleared.tags == [] and await ids("keep") == set()
    assert await store.set_tags("missing", ["x"], later) is None


async def test_tag_counts_are_per_scope_most_used_first(store: Store) -> None:
    sessions = [
        make_session(tags=["billing", "vip"]),
        make_session(tags=["billing"]),
        make_session(tags=["alpha"]),
        make_session(),
        make_session(owner="bob", tags=["billing", "bobs"]),
        make_session(entity="globex", tags=["billing", "theirs"]),
        make_session(tags=["billing", "expired"], expires_at=T0),
    ]
    for s in sessions:
        await store.create_session(s, None, 10)
    assert await store.tag_counts(OwnerScope("acme", "alice"), T0, 10) == [
        ("billing", 2),
        ("alpha", 1),
        ("vip", 1),
    ]
    assert await store.tag_counts(OwnerScope("acme", "alice"), T0, 1) == [("billing", 2)]
    assert await store.tag_counts(OwnerScope("acme", None), T0, 10) == [
        ("billing", 3),
        ("alpha", 1),
        ("bobs", 1),
        ("vip", 1),
    ]
    await store.set_tags(sessions[0].id, ["vip"], T0)
    assert await store.tag_counts(OwnerScope("acme", "alice"), T0, 10) == [
        ("alpha", 1),
        ("billing", 1),
        ("vip", 1),
    ]
    assert await store.tag_counts(OwnerScope("nobody", None), T0, 10) == []


async def test_listing_at_a_time_leaves_out_expired_sessions(store: Store) -> None:
    later = T0 + timedelta(days=1)
    forever = make_session()
    live = make_session(expires_at=later + timedelta(microseconds=1))
    due = make_session(expires_at=later)
    gone = make_session(expires_at=T0)
    for s in (forever, live, due, gone):
        await store.create_session(s, None, 10)
    scope = OwnerScope("acme", "alice")

    async def ids(f: SessionFilter) -> set[str]:
        return {s.id for s in await store.list_sessions(scope, f, None, 50)}

    assert await ids(SessionFilter()) == {forever.id, live.id, due.id, gone.id}
    assert await ids(SessionFilter(live_at=later)) == {forever.id, live.id}
    assert await ids(SessionFilter(live_at=T0 - timedelta(days=1))) == {
        forever.id,
        live.id,
        due.id,
        gone.id,
    }
    # With a keyset cursor as well.
    first = await store.list_sessions(scope, SessionFilter(live_at=later), None, 1)
    cursor = SessionCursor(first[0].last_activity_at, first[0].id)
    rest = await store.list_sessions(scope, SessionFilter(live_at=later), cursor, 10)
    assert {s.id for s in first + rest} == {forever.id, live.id}


async def test_appending_with_retention_moves_the_expiry(store: Store) -> None:
    session = make_session(expires_at=T0 + timedelta(days=30))
    await store.create_session(session, None, 10)
    later = T0 + timedelta(hours=5)
    _, stored = await store.append_turn(make_turn(session.id, at=later), 10, 30)
    assert stored.expires_at == later + timedelta(days=30)
    assert (await store.get_session(session.id)).expires_at == later + timedelta(days=30)
    # A turn stamped earlier than the last activity never pulls the expiry back.
    _, stored = await store.append_turn(make_turn(session.id, at=T0), 10, 30)
    assert stored.expires_at == later + timedelta(days=30)
    # Without retention the expiry stays as it is.
    _, stored = await store.append_turn(make_turn(session.id, at=later + timedelta(days=1)), 10)
    assert stored.expires_at == later + timedelta(days=30)


async def test_apply_retention_rewrites_one_chat_apps_expiries(store: Store) -> None:
    support = [make_session(at=T0 + timedelta(minutes=i)) for i in range(5)]
    never = make_session()
    other = make_session(app="knowledge", expires_at=T0 + timedelta(days=700))
    for s in (*support, never, other):
        await store.create_session(s, None, 10)
    await store.append_turn(make_turn(support[0].id, at=T0 + timedelta(days=2)), 10)
    assert await store.apply_retention("support", 7) == 6
    for s in (*support[1:], never):
        stored = await store.get_session(s.id)
        assert stored.expires_at == stored.last_activity_at + timedelta(days=7), s.id
    assert (await store.get_session(support[0].id)).expires_at == T0 + timedelta(days=9)
    assert (await store.get_session(other.id)).expires_at == T0 + timedelta(days=700)
    # Shortened: what is now past its expiry leaves the listing at once.
    await store.apply_retention("support", 1)
    scope = OwnerScope("acme", "alice")
    live = await store.list_sessions(
        scope, SessionFilter(live_at=T0 + timedelta(days=1, hours=12)), None, 50
    )
    assert {s.id for s in live} == {support[0].id, other.id}
    assert await store.apply_retention("nothing-here", 7) == 0


async def test_set_status(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    later = T0 + timedelta(hours=1)
    done = await store.set_status(session.id, SessionStatus.COMPLETED, later)
    assert done.status is SessionStatus.COMPLETED and done.updated_at == later
    assert (await store.get_session(session.id)).status is SessionStatus.COMPLETED
    reopened = await store.set_status(session.id, SessionStatus.ACTIVE, later)
    assert reopened.status is SessionStatus.ACTIVE
    assert await store.set_status("missing", SessionStatus.COMPLETED, later) is None


async def test_pins_are_per_user_and_idempotent(store: Store) -> None:
    a, b = make_session(), make_session()
    for s in (a, b):
        await store.create_session(s, None, 10)
    await store.pin("acme", Pin("alice", a.id, T0))
    await store.pin("acme", Pin("alice", b.id, T0 + timedelta(seconds=1)))
    await store.pin("acme", Pin("alice", a.id, T0 + timedelta(seconds=5)))
    await store.pin("acme", Pin("bob", a.id, T0))
    assert [s.id for s in await store.list_pinned("acme", "alice", 10)] == [b.id, a.id]
    assert await store.pinned_session_ids("acme", "alice", [a.id, b.id]) == {a.id, b.id}
    assert await store.pinned_session_ids("globex", "alice", [a.id, b.id]) == set()
    await store.unpin("acme", "alice", b.id)
    assert [s.id for s in await store.list_pinned("acme", "alice", 10)] == [a.id]
    assert [s.id for s in await store.list_pinned("acme", "bob", 10)] == [a.id]


def make_share(
    session_id: str,
    kind: GranteeKind = GranteeKind.USER,
    entity: str | None = "acme",
    user: str | None = "bob",
    *,
    at: datetime = T0,
    **kw,
) -> Share:
    return Share(
        kw.pop("id", new_id()),
        session_id,
        "acme",
        kind,
        entity,
        user,
        kw.pop("mode", ShareMode.READ),
        "alice",
        at,
        **kw,
    )


def session_audit(action: str, session_id: str) -> AuditEvent:
    return audit_event(action, f"session:{session_id}")


async def audit_actions(store: Store, entity: str = "acme", **filters) -> list[str]:
    events = await store.list_audit(entity, AuditFilter(**filters), None, 100)
    return [e.action for e in events]


async def test_delete_cascades_and_keeps_the_audit_event(store: Store) -> None:
    session = make_session()
    await store.create_session(session, make_turn(session.id), 10)
    turn = (await store.list_turns(session.id, limit=1))[0]
    await store.pin("acme", Pin("alice", session.id, T0))
    link = make_share(session.id, GranteeKind.LINK, None, None, token_hash="h1")
    await store.create_share(make_share(session.id), session_audit("share.created", session.id))
    await store.create_share(link, session_audit("share.created", session.id))
    await store.record_link_visit(link, "acme", "carol", T0, None)
    event = session_audit("session.deleted", session.id)
    assert await store.delete_session(session.id, event, redact_details) is True
    assert await store.get_session(session.id) is None
    assert await store.get_turn(turn.id) is None
    assert await store.list_turns(session.id, limit=10) == []
    assert await store.list_pinned("acme", "alice", 10) == []
    assert await store.list_shares(session.id) == []
    assert await store.share_by_token_hash("h1") is None
    assert await store.opened_link_ids(session.id, "acme", "carol") == set()
    assert await audit_actions(store, session_id=session.id) == [
        "session.deleted",
        "share.created",
        "share.created",
    ]
    assert await store.delete_session(session.id, audit_event(), redact_details) is False


async def test_shares_read_back(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    link = make_share(
        session.id,
        GranteeKind.LINK,
        None,
        None,
        mode=ShareMode.INTERACT,
        expires_at=T0 + timedelta(days=1),
        token_hash="abc123",
    )
    external = make_share(session.id, GranteeKind.EXTERNAL, "partner", "dan")
    await store.create_share(link, session_audit("share.created", session.id))
    await store.create_share(external, session_audit("share.created", session.id))
    assert await store.list_shares(session.id) == sorted([link, external], key=lambda s: s.id)
    assert await store.get_share(external.id) == external
    assert await store.share_by_token_hash("abc123") == link
    assert await store.share_by_token_hash("nope") is None
    assert await store.get_share("nope") is None


async def test_sharing_a_missing_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.create_share(make_share("missing"), session_audit("share.created", "x"))


async def test_revoke_happens_once(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    share = make_share(session.id)
    await store.create_share(share, session_audit("share.created", session.id))
    first = await store.revoke_share(
        share.id, T0, "alice", session_audit("share.revoked", session.id)
    )
    assert (first.revoked_at, first.revoked_by) == (T0, "alice")
    later = T0 + timedelta(hours=1)
    again = await store.revoke_share(
        share.id, later, "root", session_audit("share.revoked", session.id)
    )
    assert (again.revoked_at, again.revoked_by) == (T0, "alice")
    assert await audit_actions(store, action="share.revoked") == ["share.revoked"]
    assert await store.revoke_share("nope", T0, "alice", audit_event()) is None


async def test_link_visits(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    link = make_share(session.id, GranteeKind.LINK, None, None, token_hash="t")
    await store.create_share(link, session_audit("share.created", session.id))
    await store.record_link_visit(
        link, "acme", "carol", T0, session_audit("share.opened", session.id)
    )
    await store.record_link_visit(link, "acme", "carol", T0, None)
    assert await store.opened_link_ids(session.id, "acme", "carol") == {link.id}
    assert await store.opened_link_ids(session.id, "globex", "carol") == set()
    assert await audit_actions(store, action="share.opened") == ["share.opened"]


async def test_shared_with_lists_live_grants_newest_first(store: Store) -> None:
    now = T0 + timedelta(days=1)
    sessions = [make_session() for _ in range(6)]
    for s in sessions:
        await store.create_session(s, None, 10)
    other_entity = make_session(entity="globex", owner="gus")
    await store.create_session(other_entity, None, 10)
    shares = [
        make_share(sessions[0].id, at=T0 + timedelta(minutes=1)),
        make_share(sessions[1].id, GranteeKind.ENTITY, "acme", None, at=T0 + timedelta(minutes=2)),
        make_share(sessions[2].id, at=T0 + timedelta(minutes=3), revoked_at=T0),
        make_share(sessions[3].id, at=T0 + timedelta(minutes=4), expires_at=now),
        make_share(sessions[4].id, user="carol", at=T0 + timedelta(minutes=5)),
        # A second grant of session 0, newer: it moves the session up, listed once.
        make_share(sessions[0].id, GranteeKind.ENTITY, "acme", None, at=T0 + timedelta(minutes=6)),
        make_share(
            other_entity.id, GranteeKind.EXTERNAL, "acme", "bob", at=T0 + timedelta(minutes=7)
        ),
    ]
    link = make_share(sessions[5].id, GranteeKind.LINK, None, None, token_hash="l", at=T0)
    for share in [*shares, link]:
        await store.create_share(share, session_audit("share.created", share.session_id))
    bob = GranteeScope("acme", "bob", internal=True)
    listed = await store.list_shared_with(bob, now, None, 10)
    assert [s.id for s, _ in listed] == [other_entity.id, sessions[0].id, sessions[1].id]
    assert listed[1][1] == T0 + timedelta(minutes=6)
    await store.record_link_visit(link, "acme", "bob", T0, None)
    listed = await store.list_shared_with(bob, now, None, 10)
    assert [s.id for s, _ in listed][-1] == sessions[5].id
    first_page = await store.list_shared_with(bob, now, None, 2)
    cursor = KeysetCursor(first_page[-1][1], first_page[-1][0].id)
    rest = await store.list_shared_with(bob, now, cursor, 10)
    assert [s.id for s, _ in first_page + rest] == [s.id for s, _ in listed]
    outsider = GranteeScope("acme", "bob", internal=False)
    assert sessions[1].id not in [
        s.id for s, _ in await store.list_shared_with(outsider, now, None, 10)
    ]
    same_name_elsewhere = GranteeScope("globex", "bob", internal=True)
    assert await store.list_shared_with(same_name_elsewhere, now, None, 10) == []
    owner = GranteeScope("acme", "alice", internal=True)
    assert await store.list_shared_with(owner, now, None, 10) == []


async def test_due_shares_expire_once_with_an_audit_event(store: Store) -> None:
    session = make_session()
    await store.create_session(session, None, 10)
    due = make_share(session.id, expires_at=T0 + timedelta(minutes=1))
    later = make_share(session.id, expires_at=T0 + timedelta(days=1))
    revoked = make_share(session.id, expires_at=T0, revoked_at=T0)
    for share in (due, later, revoked):
        await store.create_share(share, session_audit("share.created", session.id))

    def expired_event(share: Share) -> AuditEvent:
        return session_audit("share.expired", share.session_id)

    now = T0 + timedelta(hours=1)
    assert [s.id for s in await store.expire_due_shares(now, 10, expired_event)] == [due.id]
    assert await store.expire_due_shares(now, 10, expired_event) == []
    assert await audit_actions(store, action="share.expired") == ["share.expired"]


async def test_audit_is_listed_newest_first_per_entity_and_filtered(store: Store) -> None:
    for i in range(5):
        await store.append_audit(
            AuditEvent(
                new_id(),
                "acme",
                "alice" if i % 2 else "bob",
                f"a{i}",
                f"session:s{i % 2}",
                T0 + timedelta(seconds=i),
            )
        )
    await store.append_audit(AuditEvent(new_id(), "globex", "x", "other", "t", T0))
    assert await audit_actions(store) == ["a4", "a3", "a2", "a1", "a0"]
    assert await audit_actions(store, actor_id="alice") == ["a3", "a1"]
    assert await audit_actions(store, action="a2") == ["a2"]
    assert await audit_actions(store, session_id="s0") == ["a4", "a2", "a0"]
    assert await audit_actions(
        store, since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=3)
    ) == ["a2", "a1"]
    page = await store.list_audit("acme", AuditFilter(), None, 2)
    rest = await store.list_audit("acme", AuditFilter(), KeysetCursor(page[-1].at, page[-1].id), 10)
    assert [e.action for e in page + rest] == ["a4", "a3", "a2", "a1", "a0"]


async def test_entity_wide_listing(store: Store) -> None:
    mine, theirs = make_session(), make_session(owner="bob")
    elsewhere = make_session(entity="globex")
    for s in (mine, theirs, elsewhere):
        await store.create_session(s, None, 10)
    listed = await store.list_sessions(OwnerScope("acme", None), SessionFilter(), None, 10)
    assert {s.id for s in listed} == {mine.id, theirs.id}


async def test_a_healthy_store_is_ready_and_the_check_changes_nothing(store: Store) -> None:
    session = make_session()
    await store.create_session(session, make_turn(session.id, content="first words"), 10)
    before = await store.get_session(session.id)
    for _ in range(3):
        await store.check_ready()
    stored = await store.get_session(session.id)
    assert stored == before and stored is not None and stored.turn_count == 1
    turns = await store.list_turns(session.id, limit=10)
    assert [t.content for t in turns] == ["first words"]
    appended, _ = await store.append_turn(make_turn(session.id, content="then these"), 10)
    assert appended.seq == 2


def expiry_audit(session: Session) -> AuditEvent:
    return AuditEvent(
        new_id(),
        session.entity_id,
        "system",
        "session.expired",
        f"session:{session.id}",
        T0,
        {"chatAppId": session.chat_app_id, "turnCount": session.turn_count},
    )


async def test_remove_expired_deletes_with_children_and_audits(store: Store) -> None:
    now = T0 + timedelta(days=10)
    gone = make_session(expires_at=now)
    live = make_session(expires_at=now + timedelta(microseconds=1))
    forever = make_session()
    for s in (gone, live, forever):
        await store.create_session(s, make_turn(s.id, content="expiring words"), 10)
    await store.pin("acme", Pin("alice", gone.id, T0))
    link = make_share(gone.id, GranteeKind.LINK, None, None, token_hash="rx")
    await store.create_share(make_share(gone.id), session_audit("share.created", gone.id))
    await store.create_share(link, session_audit("share.created", gone.id))
    await store.record_link_visit(link, "acme", "carol", T0, None)
    await store.set_tags(gone.id, ["billing"], T0)

    removed = await store.remove_expired(ExpirySweep(now, 100, expiry_audit, redact_details))
    assert [(s.id, s.chat_app_id, s.turn_count) for s in removed] == [(gone.id, "support", 1)]
    assert await store.get_session(gone.id) is None
    assert await store.list_turns(gone.id, limit=10) == []
    assert await store.list_pinned("acme", "alice", 10) == []
    assert await store.list_shares(gone.id) == []
    assert await store.share_by_token_hash("rx") is None
    assert await store.opened_link_ids(gone.id, "acme", "carol") == set()
    assert ("billing", 1) not in await store.tag_counts(OwnerScope("acme", "alice"), T0, 10)
    assert await audit_actions(store, session_id=gone.id) == [
        "session.expired",
        "share.created",
        "share.created",
    ]
    event = (await store.list_audit("acme", AuditFilter(action="session.expired"), None, 10))[0]
    assert event.actor_id == "system"
    assert event.details == {"chatAppId": "support", "turnCount": 1}
    for kept in (live, forever):
        assert await store.get_session(kept.id) is not None
        assert len(await store.list_turns(kept.id, limit=10)) == 1
    assert await store.remove_expired(ExpirySweep(now, 100, expiry_audit, redact_details)) == []


async def test_remove_expired_respects_batch_chat_app_and_entity(store: Store) -> None:
    now = T0 + timedelta(days=10)
    support = [make_session(expires_at=T0) for _ in range(5)]
    other_app = make_session(app="knowledge", expires_at=T0)
    other_entity = make_session(entity="globex", expires_at=T0)
    for s in (*support, other_app, other_entity):
        await store.create_session(s, None, 10)
    first = await store.remove_expired(
        ExpirySweep(now, 2, expiry_audit, redact_details, chat_app_id="support", entity_id="acme")
    )
    assert len(first) == 2
    rest = await store.remove_expired(
        ExpirySweep(now, 10, expiry_audit, redact_details, chat_app_id="support", entity_id="acme")
    )
    assert sorted(s.id for s in first + rest) == sorted(s.id for s in support)
    assert await store.get_session(other_app.id) is not None
    assert await store.get_session(other_entity.id) is not None
    everything = await store.remove_expired(ExpirySweep(now, 10, expiry_audit, redact_details))
    assert {s.id for s in everything} == {other_app.id, other_entity.id}


async def test_remove_expired_dry_run_changes_nothing(store: Store) -> None:
    now = T0 + timedelta(days=10)
    expired = sorted((make_session(expires_at=T0) for _ in range(3)), key=lambda s: s.id)
    for s in expired:
        await store.create_session(s, make_turn(s.id), 10)
    page = await store.remove_expired(
        ExpirySweep(now, 2, expiry_audit, redact_details, dry_run=True)
    )
    assert [s.id for s in page] == [s.id for s in expired[:2]]
    after = await store.remove_expired(
        ExpirySweep(now, 2, expiry_audit, redact_details, dry_run=True, after_id=page[-1].id)
    )
    assert [s.id for s in after] == [expired[2].id]
    for s in expired:
        assert await store.get_session(s.id) is not None
        assert len(await store.list_turns(s.id, limit=10)) == 1
    assert await audit_actions(store, action="session.expired") == []


# Session templates defined by admins


def make_template(
    name: str = "Refund request", *, entity: str = "acme", app: str = "support", **kw
) -> EntityTemplate:
    return EntityTemplate(
        entity_id=entity,
        chat_app_id=app,
        template=SessionTemplate(
            id=kw.pop("id", new_id()),
            name=name,
            description=kw.pop("description", "A customer wants money back."),
            system_prompt=kw.pop("system_prompt", "Be kind; ask for the order number."),
            variables=kw.pop("variables", {"tone": "warm", "limits": {"refund": 100}}),
            starter_turns=kw.pop(
                "starter_turns",
                (
                    StarterTurn(TurnRole.SYSTEM, "Refunds above 100 need approval."),
                    StarterTurn(TurnRole.ASSISTANT, "Which order is it about?"),
                ),
            ),
        ),
        created_by="ada",
        created_at=T0,
        updated_at=T0,
    )


def template_audit(action: str, template: EntityTemplate) -> AuditEvent:
    return AuditEvent(
        new_id(), template.entity_id, "ada", action, f"template:{template.id}", T0, {"n": 1}
    )


async def test_templates_read_back_within_their_entity_only(store: Store) -> None:
    refund = make_template("Refund request")
    bare = make_template(
        "Ärger mit der Lieferung", system_prompt=None, variables=None, starter_turns=()
    )
    other_app = make_template("Refund request", app="knowledge")
    other_entity = make_template("Refund request", entity="globex")
    for t in (refund, bare, other_app, other_entity):
        await store.create_template(t, template_audit("template.created", t))

    assert await store.get_template("acme", refund.id) == refund
    assert await store.get_template("acme", bare.id) == bare
    assert await store.get_template("globex", refund.id) is None
    assert await store.get_template("acme", other_entity.id) is None
    assert await store.get_template("acme", "missing") is None
    assert await store.list_templates("acme", "support") == [refund, bare]  # by name key
    assert await store.list_templates("acme", "knowledge") == [other_app]
    assert await store.list_templates("globex", "support") == [other_entity]
    assert await store.list_templates("initech", "support") == []
    events = await store.list_audit("acme", AuditFilter(action="template.created"), None, 10)
    assert sorted(e.target for e in events) == sorted(
        f"template:{t.id}" for t in (refund, bare, other_app)
    )


async def test_template_names_are_unique_per_entity_and_chat_app(store: Store) -> None:
    first = make_template("Refund request")
    await store.create_template(first, template_audit("template.created", first))
    same = make_template("  REFUND   request ")
    with pytest.raises(Conflict):
        await store.create_template(same, template_audit("template.created", same))
    assert await store.list_templates("acme", "support") == [first]
    assert await store.get_template("acme", same.id) is None
    assert await audit_actions(store) == ["template.created"]


async def test_updating_a_template_replaces_its_content_and_keeps_its_owner(
    store: Store,
) -> None:
    original = make_template("Refund request")
    taken = make_template("Exchange")
    for t in (original, taken):
        await store.create_template(t, template_audit("template.created", t))
    later = T0 + timedelta(hours=2)
    changed = EntityTemplate(
        entity_id="acme",
        chat_app_id="support",
        template=SessionTemplate(
            id=original.id,
            name="Refund (over 100)",
            description="",
            system_prompt=None,
            variables={"tone": "formal"},
            starter_turns=(StarterTurn(TurnRole.USER, "I want a refund."),),
        ),
        created_by="ada",
        created_at=T0,
        updated_at=later,
    )
    assert await store.update_template(changed, template_audit("template.updated", changed))
    assert await store.get_template("acme", original.id) == changed
    assert [t.id for t in await store.list_templates("acme", "support")] == [taken.id, original.id]

    # Another entity's update, a missing id and a taken name change nothing.
    foreign = EntityTemplate(
        "globex", "support", changed.template, "mallory", T0, later + timedelta(hours=1)
    )
    assert not await store.update_template(foreign, template_audit("template.updated", foreign))
    missing = make_template("Ghost")
    assert not await store.update_template(missing, template_audit("template.updated", missing))
    clash = EntityTemplate(
        "acme",
        "support",
        SessionTemplate(id=original.id, name="exchange"),
        "ada",
        T0,
        later + timedelta(hours=1),
    )
    with pytest.raises(Conflict):
        await store.update_template(clash, template_audit("template.updated", clash))
    assert await store.get_template("acme", original.id) == changed
    assert await audit_actions(store) == [
        "template.updated",
        "template.created",
        "template.created",
    ]
    assert await audit_actions(store, entity="globex") == []


async def test_deleting_a_template_keeps_its_audit_event_and_frees_its_name(store: Store) -> None:
    template = make_template("Refund request")
    await store.create_template(template, template_audit("template.created", template))
    assert not await store.delete_template(
        "globex", template.id, template_audit("template.deleted", template)
    )
    assert await store.get_template("acme", template.id) == template

    assert await store.delete_template(
        "acme", template.id, template_audit("template.deleted", template)
    )
    assert await store.get_template("acme", template.id) is None
    assert await store.list_templates("acme", "support") == []
    assert not await store.delete_template(
        "acme", template.id, template_audit("template.deleted", template)
    )
    assert await audit_actions(store) == ["template.deleted", "template.created"]
    again = make_template("Refund request")
    await store.create_template(again, template_audit("template.created", again))
    assert await store.list_templates("acme", "support") == [again]
