"""Automatic titles, off the request path.

The session service tells the `TitleService` about each committed turn (`notify`, which
never waits); the service decides whether the session needs a title now and, if so, puts
its id on a bounded queue. Background workers take ids off the queue, read the turns
they need from the store, generate, and store the title as AUTO — which the store never
lets replace a MANUAL one, nor a title that changed since the job read the session (a
rename, or an erasure that took back a title made from the turns it emptied) — then
publish `SessionUpdated`. The search index is updated in
the store's rename transaction, so search sees a new title as soon as it is stored.

When a session needs a title:

- after its first exchange (an assistant turn while the title is still PENDING), from
  its first few turns; a session whose first exchange says nothing to title (a greeting)
  stays PENDING and is tried again after the next exchange;
- every `shift_every` turns: when the recent turns have drifted from what the title
  describes (`topic_similarity` below `shift_threshold`), a new title from them.

Both the topic check and the offline generator are milliseconds of CPU each: they run
where the `Offload` given says (the server's is a worker process), never on the event loop.

Chat apps with automatic titles off are left alone: their sessions keep the opening
words of the first message until someone renames them.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from .chat_apps import ChatApps
from .clock import Clock
from .errors import DomainError
from .events import SessionUpdated
from .models import Session, TitleSource, Turn, TurnRole, TurnText
from .ports import Broker, Offload, Store
from .titles import TURN_CHARS, TitleGenerator, clean_title, topic_similarity

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TitlePolicy:
    first_turns: int = 6
    """The first title is made from at most this many opening turns."""
    shift_every: int = 6
    """Check for a topic shift each time the session's turn count is a multiple of this
    (0: never); the check compares the title with this many most recent turns."""
    shift_threshold: float = 0.25
    """Below this similarity between the title and the recent turns, retitle."""
    queue_size: int = 1000
    workers: int = 2


class TitleService:
    def __init__(
        self,
        store: Store,
        chat_apps: ChatApps,
        broker: Broker,
        clock: Clock,
        generator: TitleGenerator,
        offload: Offload,
        policy: TitlePolicy | None = None,
    ) -> None:
        """`offload` runs the topic check; the service closes it
        when it stops, after the generator, which may have been given the same one."""
        self._store = store
        self._chat_apps = chat_apps
        self._broker = broker
        self._clock = clock
        self._generator = generator
        self._policy = policy or TitlePolicy()
        self._offload = offload
        self._queue: asyncio.Queue[str] = asyncio.Queue(self._policy.queue_size)
        self._queued: set[str] = set()
        self._again: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []

    @property
    def policy(self) -> TitlePolicy:
        return self._policy

    # Deciding (on the request path: no I/O, no waiting)

    def notify(self, session: Session, turn: Turn) -> None:
        """Called after `turn` was committed to `session` (as the store returned it).
        Never raises: a title is not worth failing a write that has been committed."""
        try:
            if self.wants_title(session, turn):
                self.schedule(session.id)
        except Exception:
            log.exception("titles.notify_failed", session_id=session.id)

    def wants_title(self, session: Session, turn: Turn) -> bool:
        if session.title_source is TitleSource.MANUAL:
            return False
        chat_app = self._chat_apps.get(session.chat_app_id)
        if chat_app is None or not chat_app.settings.auto_generate_titles:
            return False
        policy = self._policy
        first_exchange = (
            session.title_source is TitleSource.PENDING
            and turn.role is TurnRole.ASSISTANT
            and session.turn_count <= 2 * policy.first_turns
        )
        shift_check = policy.shift_every > 0 and session.turn_count % policy.shift_every == 0
        return first_exchange or shift_check

    def title_again(self, session: Session) -> None:
        """A title was taken back (erasure emptied turns it may have been made from):
        where the chat app makes titles, make one from the turns left."""
        chat_app = self._chat_apps.get(session.chat_app_id)
        if chat_app is not None and chat_app.settings.auto_generate_titles:
            self.schedule(session.id)

    def schedule(self, session_id: str) -> bool:
        """Queue the session for a title; False when the queue is full (the next turn
        will ask again). A session already queued or being titled is not queued twice,
        but one being titled is looked at again once that is done."""
        if session_id in self._queued:
            self._again.add(session_id)
            return True
        try:
            self._queue.put_nowait(session_id)
        except asyncio.QueueFull:
            log.warning("titles.queue_full", session_id=session_id)
            return False
        self._queued.add(session_id)
        return True

    # Working (in the background)

    def start(self) -> None:
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(), name=f"titles-{i}")
                for i in range(self._policy.workers)
            ]

    async def stop(self) -> None:
        """Stop the workers and close the generator and the offload; what is still queued
        is dropped (titles are best effort: those sessions keep their title until their
        next turn asks again)."""
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        close = getattr(self._generator, "aclose", None)
        if close is not None:
            await close()
        await self._offload.aclose()

    async def drain(self) -> None:
        """Wait until everything queued so far has been titled (for tests and shutdown)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            session_id = await self._queue.get()
            try:
                await self.retitle(session_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("titles.failed", session_id=session_id)
            finally:
                self._queued.discard(session_id)
                if session_id in self._again:
                    self._again.discard(session_id)
                    self.schedule(session_id)
                self._queue.task_done()

    async def retitle(self, session_id: str) -> Session | None:
        """Give the session the title it needs now, if any; the session as renamed, or
        None when nothing changed."""
        session = await self._store.get_session(session_id)
        if session is None or session.title_source is TitleSource.MANUAL:
            return None
        policy = self._policy
        if session.title_source is TitleSource.PENDING and session.turn_count <= 2 * (
            policy.first_turns
        ):
            opening = await self._store.conversation(
                session.id, limit=policy.first_turns, chars=TURN_CHARS
            )
            title = await self._generate(opening)
            return await self._rename(session, title)
        if policy.shift_every <= 0:
            return None
        window = max(policy.shift_every, 2)
        newest = await self._store.conversation(
            session.id, limit=3 * window, newest_first=True, chars=TURN_CHARS
        )
        turns = newest[::-1]
        recent, earlier = turns[-window:], turns[:-window]
        if session.title_source is not TitleSource.PENDING:
            similarity = await self._offload.run(topic_similarity, session.title, recent, earlier)
            if similarity >= policy.shift_threshold:
                return None
            log.info("titles.topic_shift", session_id=session.id, similarity=round(similarity, 3))
        title = await self._generate(recent)
        return await self._rename(session, title)

    async def _generate(self, turns: list[TurnText]) -> str | None:
        if not turns:
            return None
        return clean_title(await self._generator.generate(turns))

    async def _rename(self, session: Session, title: str | None) -> Session | None:
        if title is None:
            return None
        if title == session.title and session.title_source is TitleSource.AUTO:
            return None
        try:
            # Only over the title the job read: the title may have changed while it was
            # being made (generating can take seconds): renamed by someone, or taken back by
            # an erasure that emptied turns this title may have been made from.
            renamed = await self._store.rename_session(
                session.id,
                title,
                TitleSource.AUTO,
                self._clock.now(),
                if_title_version=session.title_version,
            )
        except DomainError:
            log.warning("titles.rename_failed", session_id=session.id)
            return None
        if renamed is None:
            log.info("titles.changed_meanwhile", session_id=session.id)
            return None
        await self._broker.publish(SessionUpdated(renamed))
        log.debug("titles.titled", session_id=session.id)
        return renamed
