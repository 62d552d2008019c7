"""Automatic titles through the session service, on a real SQLite file, with the worker
running in the background as in the server. A title job racing an erasure runs on MongoDB
over the wire too (`any_store`, tests/domain/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sessionhub.adapters.offload import ProcessOffload, ThreadOffload
from sessionhub.domain.chat_apps import ChatAppRegistry
from sessionhub.domain.clock import new_id
from sessionhub.domain.commands import AppendTurn, CreateSession, SendMessage
from sessionhub.domain.erasure import ErasureService
from sessionhub.domain.events import SessionUpdated
from sessionhub.domain.models import (
    ChatApp,
    NewTurn,
    Principal,
    Role,
    Session,
    SessionSettings,
    TitleSource,
    TurnRole,
)
from sessionhub.domain.ports import Offload, Store
from sessionhub.domain.query import (
    SearchFilter,
    SearchOrder,
    SearchRequest,
    SearchScope,
    parse_query,
)
from sessionhub.domain.title_service import TitlePolicy, TitleService
from sessionhub.domain.titles import TitleGenerator, TurnText
from sessionhub.domain.validation import Limits
from sessionhub.realtime.memory import InProcessBroker
from sessionhub.storage.sqlite.store import SqliteStore
from tests.support.clocks import SteppingClock
from tests.support.services import SessionServices, session_services
from tests.support.titles import keyphrase_titles

ALICE = Principal("alice", "acme")
APPS = ChatAppRegistry(
    [
        ChatApp("auto", "Auto titles", SessionSettings(auto_generate_titles=True)),
        ChatApp("plain", "No auto titles", SessionSettings(auto_generate_titles=False)),
    ]
)
DATA = json.loads((Path(__file__).parent.parent / "data" / "titles.json").read_text())


class GatedGenerator:
    """The offline generator behind a gate the test opens: a generator as slow as the
    test wants, without sleeping."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()
        self.calls = 0
        self._inner = keyphrase_titles()

    async def generate(self, turns: Sequence[TurnText]) -> str | None:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        return await self._inner.generate(turns)


class FailingGenerator:
    def __init__(self, inner: TitleGenerator, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def generate(self, turns: Sequence[TurnText]) -> str | None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the generator broke")
        return await self.inner.generate(turns)


@dataclass
class Env:
    services: SessionServices
    titles: TitleService
    store: SqliteStore
    events: list

    def updates(self, session_id: str) -> list[str | None]:
        return [
            e.session.title
            for e in self.events
            if isinstance(e, SessionUpdated) and e.session.id == session_id
        ]

    async def say(self, session_id: str | None, text: str, app: str = "auto") -> str:
        if session_id is None:
            view, _ = await self.services.conversation.send_message(
                ALICE, SendMessage(text, chat_app_id=app)
            )
            return view.session.id
        await self.services.conversation.send_message(
            ALICE, SendMessage(text, session_id=session_id)
        )
        return session_id

    async def answer(self, session_id: str, text: str) -> None:
        await self.services.conversation.append_turn(
            ALICE, AppendTurn(session_id, role=TurnRole.ASSISTANT, content=text)
        )

    async def converse(self, turns: list[dict], app: str = "auto", settle: bool = True) -> str:
        """Play the turns, letting the worker catch up after each (as time would)."""
        session_id: str | None = None
        for turn in turns:
            if turn["role"] == "user":
                session_id = await self.say(session_id, turn["content"], app)
            else:
                assert session_id is not None
                await self.answer(session_id, turn["content"])
            if settle:
                await self.titles.drain()
        assert session_id is not None
        return session_id

    async def converse_more(self, session_id: str, turns: list[dict]) -> None:
        for turn in turns:
            if turn["role"] == "user":
                await self.say(session_id, turn["content"])
            else:
                await self.answer(session_id, turn["content"])
            await self.titles.drain()

    async def title(self, session_id: str) -> tuple[str | None, TitleSource]:
        session = await self.store.get_session(session_id)
        assert session is not None
        return session.title, session.title_source


async def make_env(
    tmp_path: Path, generator: TitleGenerator, offload: Offload | None = None, **policy: int
) -> Env:
    store = SqliteStore(str(tmp_path / "titles.db"), readers=2)
    await store.open()
    broker = InProcessBroker()
    events: list = []
    broker.listen(events.append)
    clock = SteppingClock()
    titles = TitleService(
        store, APPS, broker, clock, generator, offload or ThreadOffload(), TitlePolicy(**policy)
    )
    return Env(session_services(store, APPS, broker, clock, titles=titles), titles, store, events)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = await make_env(tmp_path, keyphrase_titles())
    e.titles.start()
    try:
        yield e
    finally:
        await e.titles.stop()
        await e.store.close()


def conversation(subject: str, group: str = "conversations") -> dict:
    return next(c for c in DATA[group] if c["subject"].startswith(subject))


async def test_the_first_exchange_gets_a_title_in_the_conversations_words(env: Env) -> None:
    sid = await env.say(
        None, "My sourdough starter smells like nail polish remover. Did I kill it?"
    )
    assert await env.title(sid) == (
        "My sourdough starter smells like nail polish remover. Did I",
        TitleSource.PENDING,
    )
    await env.titles.drain()
    # A user message alone is no exchange yet.
    assert (await env.title(sid))[1] is TitleSource.PENDING

    await env.answer(sid, "No, that acetone smell means the starter is hungry: feed it.")
    await env.titles.drain()
    title, source = await env.title(sid)
    assert source is TitleSource.AUTO
    assert title == "Sourdough starter smells like nail polish remover"
    # Live clients hear of it: one SessionUpdated with the new title.
    assert env.updates(sid) == [title]


async def test_send_message_does_not_wait_for_the_title(tmp_path: Path) -> None:
    generator = GatedGenerator()
    env = await make_env(tmp_path, generator)
    env.titles.start()
    try:
        sid = await env.say(None, "How do I squash my last three git commits into one?")
        # The assistant's answer triggers the title; the generator then blocks until the
        # gate opens. Had appending waited for the title, the generator would be entered
        # and held while the append is still pending; instead the append is done first.
        append = asyncio.create_task(env.answer(sid, "Use git rebase -i HEAD~3 and squash."))
        entered = asyncio.create_task(generator.entered.wait())
        done, _ = await asyncio.wait({append, entered}, return_when=asyncio.FIRST_COMPLETED)
        assert append in done and append.exception() is None
        await entered  # the title is being made now, and held there
        assert not generator.gate.is_set()
        # And a further message goes through while the title is still being made.
        await env.say(sid, "Do I need to force push afterwards?")
        assert (await env.title(sid))[1] is TitleSource.PENDING
        assert env.updates(sid) == []

        generator.gate.set()
        await env.titles.drain()
        title, source = await env.title(sid)
        assert source is TitleSource.AUTO and "git commits" in (title or "")
        assert env.updates(sid) == [title]
    finally:
        generator.gate.set()
        await env.titles.stop()
        await env.store.close()


async def test_a_manual_rename_always_wins(tmp_path: Path) -> None:
    generator = GatedGenerator()
    env = await make_env(tmp_path, generator)
    env.titles.start()
    try:
        sid = await env.say(None, "My compost pile smells terrible, like rotten eggs.")
        await env.answer(sid, "Turn the compost pile and add dry leaves.")
        await generator.entered.wait()
        # The user names the session while the automatic title is being made.
        await env.services.sessions.rename(ALICE, sid, "Garden notes")
        generator.gate.set()
        await env.titles.drain()
        assert await env.title(sid) == ("Garden notes", TitleSource.MANUAL)

        # Nothing later changes it: not another exchange, not a topic shift check.
        calls = generator.calls
        for text in ("What about the smell of my car's brakes?", "Brake pads squeal."):
            await env.say(sid, text)
            await env.answer(sid, "New brake pads squeal while they bed in.")
        await env.titles.drain()
        assert await env.title(sid) == ("Garden notes", TitleSource.MANUAL)
        assert generator.calls == calls
        # Even asked directly, the worker leaves it alone.
        assert await env.titles.retitle(sid) is None
        assert env.updates(sid) == ["Garden notes"]
    finally:
        generator.gate.set()
        await env.titles.stop()
        await env.store.close()


async def test_an_auto_title_never_replaces_a_manual_one_in_the_store(env: Env) -> None:
    sid = await env.say(None, "Why does my Excel VLOOKUP return #N/A?")
    await env.services.sessions.rename(ALICE, sid, "Spreadsheet help")
    renamed = await env.store.rename_session(
        sid, "Excel VLOOKUP returns N/A", TitleSource.AUTO, datetime.now(UTC)
    )
    assert renamed is None
    assert await env.title(sid) == ("Spreadsheet help", TitleSource.MANUAL)


async def test_without_automatic_titles_the_opening_words_stay(env: Env) -> None:
    shifting = conversation("cooking to taxes", "shifts")
    sid = await env.converse(shifting["turns"], app="plain")
    assert await env.title(sid) == (
        "My sourdough starter smells like nail polish remover. Did I",
        TitleSource.AUTO,
    )
    assert env.updates(sid) == []

    # An empty session of such an app stays untitled until someone names it.
    view = await env.services.conversation.create(ALICE, CreateSession(chat_app_id="plain"))
    await env.answer(view.session.id, "Hello, how can I help?")
    await env.say(view.session.id, "I need a new passport.")
    await env.titles.drain()
    assert await env.title(view.session.id) == (None, TitleSource.PENDING)


async def test_a_greeting_waits_for_the_exchange_that_says_something(env: Env) -> None:
    sid = await env.converse(conversation("vague opener")["turns"][:2])
    title, source = await env.title(sid)
    assert (title, source) == ("Hi, can you help me with something", TitleSource.PENDING)
    await env.converse_more(sid, conversation("vague opener")["turns"][2:])
    title, source = await env.title(sid)
    assert source is TitleSource.AUTO and "passport" in (title or "").lower()


@pytest.mark.parametrize("shifting", DATA["shifts"], ids=lambda c: c["subject"])
async def test_a_topic_shift_retitles_the_session(env: Env, shifting: dict) -> None:
    sid = await env.converse(shifting["turns"])
    titles = env.updates(sid)
    assert len(titles) == 2, titles
    title, source = await env.title(sid)
    assert source is TitleSource.AUTO and title == titles[-1]
    new_words = [k.lower() for k in shifting["new_keywords"]]
    assert any(k in title.lower() for k in new_words), title
    assert not any(k in titles[0].lower() for k in new_words), titles


async def test_in_a_worker_process_the_titles_are_the_same_and_stop_ends_the_worker(
    env: Env, tmp_path: Path
) -> None:
    shifting = DATA["shifts"][0]
    in_thread = env.updates(await env.converse(shifting["turns"]))
    # As the server has it: the generator and the topic checks share one worker process.
    offload = ProcessOffload()
    (tmp_path / "in-process").mkdir()
    in_process = await make_env(tmp_path / "in-process", keyphrase_titles(offload), offload)
    in_process.titles.start()
    try:
        sid = await in_process.converse(shifting["turns"])
        assert in_process.updates(sid) == in_thread and len(in_thread) == 2
        assert len(multiprocessing.active_children()) == 1
    finally:
        await in_process.titles.stop()
        await in_process.store.close()
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("staying", DATA["stays"], ids=lambda c: c["subject"])
async def test_a_session_that_stays_on_subject_keeps_its_title(env: Env, staying: dict) -> None:
    sid = await env.converse(staying["turns"])
    titles = env.updates(sid)
    assert len(titles) == 1, titles
    assert await env.title(sid) == (titles[0], TitleSource.AUTO)


async def test_title_changes_reach_search_at_once(env: Env) -> None:
    sid = await env.say(None, "The lower leaves on my tomato plants turn yellow. Is it blight?")
    scope = SearchScope("acme", "alice")

    async def title_hit(word: str) -> str | None:
        hits = await env.store.search(
            SearchRequest(parse_query(word), scope, SearchFilter(), SearchOrder.RELEVANCE, None, 10)
        )
        return next((h.title_snippet for h in hits if h.session.id == sid), None)

    await env.answer(sid, "Yellow lower leaves with ringed spots are most likely early blight.")
    await env.titles.drain()
    title, _ = await env.title(sid)
    assert title is not None and "tomato" in title.lower()
    # The moment the title is stored, search matches it in the title, marked.
    assert "<mark>" in (await title_hit("tomato") or "")

    # A manual rename, then: the old title's words no longer match the title.
    await env.services.sessions.rename(ALICE, sid, "Vegetable patch diary")
    assert "<mark>" in (await title_hit("diary") or "")
    assert await title_hit("tomato") is None


async def test_a_failing_generator_leaves_the_title_and_the_worker_goes_on(
    tmp_path: Path,
) -> None:
    env = await make_env(tmp_path, FailingGenerator(keyphrase_titles(), failures=1))
    env.titles.start()
    try:
        first = await env.converse(conversation("pets")["turns"][:2])
        assert (await env.title(first))[1] is TitleSource.PENDING
        second = await env.converse(conversation("cars")["turns"][:2])
        title, source = await env.title(second)
        assert source is TitleSource.AUTO and "brakes" in (title or "").lower()
        # The first one gets its title after its next exchange.
        await env.converse_more(first, conversation("pets")["turns"][2:4])
        assert (await env.title(first))[1] is TitleSource.AUTO
    finally:
        await env.titles.stop()
        await env.store.close()


async def test_the_queue_is_bounded_and_holds_a_session_once(tmp_path: Path) -> None:
    env = await make_env(tmp_path, keyphrase_titles(), queue_size=2)
    # No worker running: nothing leaves the queue.
    try:
        assert env.titles.schedule("a") and env.titles.schedule("a")
        assert env.titles.schedule("b")
        assert not env.titles.schedule("c")
        # A missing session is simply skipped once the worker runs.
        env.titles.start()
        await env.titles.drain()
        assert env.updates("a") == []
    finally:
        await env.titles.stop()
        await env.store.close()


async def test_every_dataset_conversation_ends_with_an_auto_title(env: Env) -> None:
    for c in DATA["conversations"][:10]:
        sid = await env.converse(c["turns"])
        title, source = await env.title(sid)
        assert source is TitleSource.AUTO and title and len(title) <= 60, (c["subject"], title)


# A title job that read the turns before an erasure (issue 20, point 7)

BOB_WORDS = "Zorblaxian quindlewhisk reconciliation for the grain silo"


async def test_a_title_made_from_erased_words_is_not_stored_after_the_erasure(
    any_store: Store,
) -> None:
    """The title job reads bob's words, then (an LLM takes seconds) the erasure empties his
    turn and takes the title back; the job's title, made of his words, must not land on
    top of the erasure's stand-in. The generator holds the job until the erasure is done."""
    store = any_store
    generator = GatedGenerator()
    broker = InProcessBroker()
    clock = SteppingClock()
    titles = TitleService(store, APPS, broker, clock, generator, ThreadOffload())
    erasure = ErasureService(store, broker, clock, Limits(), titles=titles)
    session = await _pending_session(store, clock)
    for author, role, text in (
        ("alice", TurnRole.USER, "Hello!"),
        ("bob", TurnRole.USER, BOB_WORDS),
        ("agent", TurnRole.ASSISTANT, "Sure, I can help."),
    ):
        turn = NewTurn(
            new_id(), session.id, role, author, text, clock.now(), author_entity_id="acme"
        )
        await store.append_turn(turn, 100)
    titles.start()
    try:
        titles.schedule(session.id)
        await generator.entered.wait()  # the job holds bob's words now
        await erasure.erase(Principal("root", "acme", roles=frozenset({Role.ADMIN})), "bob")
        erased = await store.get_session(session.id)
        assert (erased.title, erased.title_source) == ("Hello", TitleSource.PENDING)
        generator.gate.set()
        await titles.drain()
    finally:
        await titles.stop()
    after = await store.get_session(session.id)
    assert "Zorblaxian" not in (after.title or ""), after.title
    # Nothing left to title (a greeting and an answer): the stand-in stays.
    assert (after.title, after.title_source) == ("Hello", TitleSource.PENDING)
    assert generator.calls == 2, "the job ran again, from the turns the erasure left"


async def _pending_session(store: Store, clock: SteppingClock) -> Session:
    """alice's session of the "auto" app, titled "Hello" while its title is PENDING."""
    now = clock.now()
    session = Session(
        id=new_id(),
        entity_id="acme",
        chat_app_id="auto",
        owner_id="alice",
        title="Hello",
        title_source=TitleSource.PENDING,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        participants=["alice"],
    )
    await store.create_session(session, None, 100)
    return session


async def test_of_two_title_jobs_for_one_session_only_the_one_that_wrote_says_so(
    any_store: Store,
) -> None:
    """Two AUTO title jobs read the same title version; the second one's compare-and-set
    finds the first one's AUTO title, one version on: it wrote nothing, so it publishes no
    SessionUpdated and returns None (the store answers None rather than the row as it is)."""
    store = any_store
    generator = GatedGenerator()
    broker = InProcessBroker()
    events: list = []
    broker.listen(events.append)
    clock = SteppingClock()
    titles = TitleService(store, APPS, broker, clock, generator, ThreadOffload())
    session = await _pending_session(store, clock)
    for role, text in (
        (TurnRole.USER, "My sourdough starter smells like nail polish remover."),
        (TurnRole.ASSISTANT, "A hungry sourdough starter makes acetone; feed it more often."),
    ):
        turn = NewTurn(
            new_id(), session.id, role, "alice", text, clock.now(), author_entity_id="acme"
        )
        await store.append_turn(turn, 100)
    first = asyncio.create_task(titles.retitle(session.id))
    second = asyncio.create_task(titles.retitle(session.id))
    while generator.calls < 2:
        await asyncio.sleep(0)
    generator.gate.set()
    results = await asyncio.gather(first, second)
    stored = await store.get_session(session.id)
    assert (stored.title_source, stored.title_version) == (TitleSource.AUTO, 1)
    assert sum(r is not None for r in results) == 1
    assert [e.session.title for e in events if isinstance(e, SessionUpdated)] == [stored.title]
