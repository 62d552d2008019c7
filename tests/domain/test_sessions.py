"""The session service on a real SQLite file: the rules a user notices. A deletion racing a
tag change runs on MongoDB over the wire too (`any_store`, tests/domain/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionhub.domain.audit import deletion_event
from sessionhub.domain.chat_apps import ChatAppRegistry
from sessionhub.domain.commands import (
    AddFeedback,
    AppendTurn,
    CreateSession,
    SendMessage,
    SetVerification,
    ToolInvocationInput,
)
from sessionhub.domain.errors import Forbidden, InvalidInput, LimitExceeded, NotFound
from sessionhub.domain.events import SessionCreated, SessionDeleted, TurnAdded, TurnUpdated
from sessionhub.domain.models import (
    AuditFilter,
    ChatApp,
    FeedbackKind,
    Grade,
    Principal,
    Role,
    SessionFilter,
    SessionSettings,
    TitleSource,
    TurnRole,
)
from sessionhub.domain.ports import Store
from sessionhub.domain.redaction import redact_details
from sessionhub.realtime.memory import InProcessBroker
from sessionhub.storage.sqlite.store import SqliteStore
from tests.support.clocks import SteppingClock
from tests.support.services import SessionServices, session_services

ALICE = Principal("alice", "acme")
BOB = Principal("bob", "acme")
AGENT = Principal("agent", "acme", roles=frozenset({Role.SERVICE}))
APPS = ChatAppRegistry(
    [
        ChatApp(
            "support", "Support", SessionSettings(auto_generate_titles=False, max_session_history=4)
        ),
        ChatApp("knowledge", "Knowledge", SessionSettings(allow_sharing=True)),
        ChatApp("nopin", "No pins", SessionSettings(allow_pinning=False)),
    ]
)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[SessionServices, list, SqliteStore]]:
    store = SqliteStore(str(tmp_path / "s.db"), readers=2)
    await store.open()
    broker = InProcessBroker()
    events: list = []
    broker.listen(events.append)
    try:
        yield session_services(store, APPS, broker, SteppingClock()), events, store
    finally:
        await store.close()


async def test_first_message_creates_the_session_with_opening_words(env) -> None:
    service, events, _ = env
    view, turn = await service.conversation.send_message(
        ALICE, SendMessage("My invoice from March is wrong, can you fix it?", chat_app_id="support")
    )
    assert turn.seq == 1 and turn.author_id == "alice" and turn.role is TurnRole.USER
    assert view.session.title == "My invoice from March is wrong, can you fix it"
    assert view.session.title_source is TitleSource.AUTO
    assert [type(e) for e in events] == [SessionCreated, TurnAdded]


async def test_auto_titled_apps_start_pending(env) -> None:
    service, _, _ = env
    view, _ = await service.conversation.send_message(
        ALICE, SendMessage("Explain RAFT", chat_app_id="knowledge")
    )
    assert view.session.title_source is TitleSource.PENDING
    renamed = await service.sessions.rename(ALICE, view.session.id, "  Consensus   notes ")
    assert (renamed.session.title, renamed.session.title_source) == (
        "Consensus notes",
        TitleSource.MANUAL,
    )


async def test_history_limit(env) -> None:
    service, _, store = env
    view, _ = await service.conversation.send_message(
        ALICE, SendMessage("one", chat_app_id="support")
    )
    sid = view.session.id
    for text in ("two", "three", "four"):
        await service.conversation.append_turn(ALICE, AppendTurn(sid, content=text))
    with pytest.raises(LimitExceeded):
        await service.conversation.send_message(ALICE, SendMessage("five", session_id=sid))
    assert (await store.get_session(sid)).turn_count == 4


async def test_concurrent_appends_number_turns_without_gaps(env) -> None:
    service, _, _ = env
    view, _ = await service.conversation.send_message(
        ALICE, SendMessage("start", chat_app_id="knowledge")
    )
    await asyncio.gather(
        *(
            service.conversation.append_turn(
                AGENT, AppendTurn(view.session.id, content=f"part {i}")
            )
            for i in range(30)
        )
    )
    page = await service.sessions.turns(
        await service.access.view(ALICE, view.session.id), first=100
    )
    assert [t.seq for t in page.turns] == list(range(1, 32))


async def test_service_creates_on_behalf_of_a_user_only(env) -> None:
    service, _, _ = env
    view = await service.conversation.create(
        AGENT, CreateSession("knowledge", on_behalf_of="alice")
    )
    assert view.session.owner_id == "alice"
    assert (await service.access.view(ALICE, view.session.id)).session.id == view.session.id
    with pytest.raises(Forbidden):
        await service.conversation.create(BOB, CreateSession("knowledge", on_behalf_of="alice"))


async def test_other_users_see_nothing(env) -> None:
    service, _, _ = env
    view, turn = await service.conversation.send_message(
        ALICE, SendMessage("private", chat_app_id="knowledge")
    )
    with pytest.raises(NotFound):
        await service.access.view(BOB, view.session.id)
    with pytest.raises(NotFound):
        await service.conversation.add_feedback(BOB, turn.id, AddFeedback(FeedbackKind.THUMBS_UP))
    with pytest.raises(NotFound):
        await service.sessions.delete(
            Principal("alice", "globex", roles=frozenset({Role.ADMIN})), view.session.id
        )
    assert (await service.sessions.page(BOB, SessionFilter(), 10, None)).items == []


async def test_verification_by_service_and_feedback_by_owner(env) -> None:
    service, events, _ = env
    view, _ = await service.conversation.send_message(
        ALICE, SendMessage("q", chat_app_id="knowledge")
    )
    answer = await service.conversation.append_turn(AGENT, AppendTurn(view.session.id, content="a"))
    graded = await service.conversation.set_verification(
        AGENT, answer.id, SetVerification(Grade.A, 0.97, "checked against docs")
    )
    assert graded.verification.grade is Grade.A and graded.verification.verified_by == "agent"
    with pytest.raises(InvalidInput):
        await service.conversation.set_verification(AGENT, answer.id, SetVerification(Grade.B, 1.5))
    liked = await service.conversation.add_feedback(
        ALICE, answer.id, AddFeedback(FeedbackKind.THUMBS_UP, "great")
    )
    assert [(f.user_id, f.kind, f.comment) for f in liked.feedback] == [
        ("alice", FeedbackKind.THUMBS_UP, "great")
    ]
    assert sum(isinstance(e, TurnUpdated) for e in events) == 2


async def test_tool_only_assistant_turn_needs_no_text(env) -> None:
    service, _, _ = env
    view, _ = await service.conversation.send_message(
        ALICE, SendMessage("q", chat_app_id="knowledge")
    )
    turn = await service.conversation.append_turn(
        AGENT,
        AppendTurn(
            view.session.id,
            role=TurnRole.ASSISTANT,
            tool_invocations=[ToolInvocationInput("search", input={"q": "x"})],
        ),
    )
    assert turn.tool_invocations[0].name == "search" and turn.tool_invocations[0].id
    with pytest.raises(InvalidInput):
        await service.conversation.append_turn(AGENT, AppendTurn(view.session.id, content="   "))


async def test_pinning_follows_the_chat_app(env) -> None:
    service, _, _ = env
    pinnable, _ = await service.conversation.send_message(
        ALICE, SendMessage("a", chat_app_id="knowledge")
    )
    unpinnable, _ = await service.conversation.send_message(
        ALICE, SendMessage("b", chat_app_id="nopin")
    )
    assert (await service.sessions.set_pinned(ALICE, pinnable.session.id, True)).pinned
    with pytest.raises(Forbidden):
        await service.sessions.set_pinned(ALICE, unpinnable.session.id, True)
    assert [v.session.id for v in await service.sessions.pinned(ALICE)] == [pinnable.session.id]
    await service.sessions.set_pinned(ALICE, pinnable.session.id, False)
    assert await service.sessions.pinned(ALICE) == []


async def test_archive_hides_from_the_default_list(env) -> None:
    service, _, _ = env
    view, _ = await service.conversation.send_message(
        ALICE, SendMessage("a", chat_app_id="knowledge")
    )
    await service.sessions.set_archived(ALICE, view.session.id, True)
    assert (await service.sessions.page(ALICE, SessionFilter(), 10, None)).items == []
    archived = await service.sessions.page(ALICE, SessionFilter(archived=True), 10, None)
    assert [v.session.id for v in archived.items] == [view.session.id]
    await service.sessions.set_archived(ALICE, view.session.id, False)
    assert len((await service.sessions.page(ALICE, SessionFilter(), 10, None)).items) == 1


async def test_delete_removes_everything_and_audits(env) -> None:
    service, events, store = env
    view, turn = await service.conversation.send_message(
        ALICE, SendMessage("bye", chat_app_id="knowledge")
    )
    await service.sessions.set_pinned(ALICE, view.session.id, True)
    await service.sessions.delete(ALICE, view.session.id)
    assert await store.get_turn(turn.id) is None
    assert await service.sessions.pinned(ALICE) == []
    with pytest.raises(NotFound):
        await service.access.view(ALICE, view.session.id)
    audit = await store.list_audit("acme", AuditFilter(session_id=view.session.id), None, 10)
    assert [(e.action, e.actor_id) for e in audit] == [("session.deleted", "alice")]
    assert isinstance(events[-1], SessionDeleted)


async def test_turn_pages_walk_back_from_the_newest(env) -> None:
    service, _, _ = env
    view, _ = await service.conversation.send_message(
        ALICE, SendMessage("1", chat_app_id="knowledge")
    )
    for i in range(2, 8):
        await service.conversation.append_turn(ALICE, AppendTurn(view.session.id, content=str(i)))
    view = await service.access.view(ALICE, view.session.id)
    newest = await service.sessions.turns(view, last=3)
    assert [t.seq for t in newest.turns] == [5, 6, 7]
    assert newest.has_more_before and not newest.has_more_after
    older = await service.sessions.turns(view, last=3, before_seq=5)
    assert [t.seq for t in older.turns] == [2, 3, 4]
    assert older.has_more_before and older.has_more_after
    oldest = await service.sessions.turns(view, last=3, before_seq=2)
    assert [t.seq for t in oldest.turns] == [1] and not oldest.has_more_before


async def test_context_respects_max_turns_and_history(env) -> None:
    service, _, _ = env
    view, _ = await service.conversation.send_message(
        ALICE, SendMessage("1", chat_app_id="support")
    )
    for i in range(2, 5):
        await service.conversation.append_turn(ALICE, AppendTurn(view.session.id, content=str(i)))
    view = await service.access.view(ALICE, view.session.id)
    ctx = await service.sessions.context(view, max_turns=2)
    assert [m.content for m in ctx.messages] == ["3", "4"] and ctx.truncated
    assert len((await service.sessions.context(view, max_turns=1000)).messages) == 4
    with pytest.raises(InvalidInput):
        await service.sessions.context(view, max_turns=0)


class DeletedRightAfterTagging:
    """A store on which the owner's deleteSession lands the moment a tag change is
    written, before the tagging request's next store call."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def set_tags(self, session_id: str, *args, **kwargs):
        tagged = await self._store.set_tags(session_id, *args, **kwargs)
        session = await self._store.get_session(session_id)
        await self._store.delete_session(
            session_id, deletion_event(ALICE, session, session.updated_at), redact_details
        )
        return tagged


async def test_a_deletion_between_a_tag_change_and_its_event_leaves_no_tag_name(
    any_store: Store,
) -> None:
    """tagSessions writes the tags and their `session.tagged` event (which names them) in
    one store call: a deletion landing right after the tag change redacts the event, where
    a separate audit write after it would leave the tag names in the trail."""
    service = session_services(
        DeletedRightAfterTagging(any_store), APPS, InProcessBroker(), SteppingClock()
    )
    view, _ = await service.conversation.send_message(
        ALICE, SendMessage("Plan", chat_app_id="knowledge")
    )
    sid = view.session.id
    await service.sessions.tag(ALICE, [sid], ["snorkelwimbly"], None)
    assert await any_store.get_session(sid) is None
    events = await any_store.list_audit("acme", AuditFilter(), None, 50)
    about = {e.action: e.details for e in events if e.target == f"session:{sid}"}
    assert about["session.tagged"] == {"redacted": True}
    assert "snorkelwimbly" not in repr([e.details for e in events])
