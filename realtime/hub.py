"""The instance's fan-out: live followers of sessions and sidebars, grouped so that each
event is read from the store and rendered once per group, whatever the group's size (the
feeds, members and groups themselves are in feeds.py).

A *group* is every subscriber of one feed (a session, or one user's sidebar) that sent
the same document, variables and operation name: their payloads are identical, so the
group renders each event once and hands the same item to every member. The broker tells
the hub only *that* something changed on a channel; the hub reads what changed from the
store (turns after the group's cursor, by seq), which makes a missed notification
harmless: the next one, or the catch-up after a broker outage, reads everything after
the cursor.

Events show people as the subscriber's entity may see them (domain/people.py): a session's
groups are per entity of their subscribers, and a sidebar's are per principal anyway.

Session feeds: a member joins the live feed first (buffering), then replays the turns
after its `afterSeq` from the store, then drains the buffer, dropping every turn it has
already sent. Its turns are therefore gapless and without duplicates.

Each member has a bounded backlog (what its connection has not written yet). A member
whose backlog is full when a live event comes is ended with a LIMIT_EXCEEDED error that
says from which seq to resume; it never grows memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any

from ..domain.clock import Clock
from ..domain.errors import LimitExceeded, NotFound
from ..domain.events import SessionDeleted, SessionUpdated, TurnAdded, TurnUpdated
from ..domain.live import LiveAccess
from ..domain.models import Principal, Session, Share, Turn
from ..domain.ports import Store
from .changes import Lookups, sidebar_change
from .channel_jobs import FIRST, RESUMED, CatchUp, ChannelJobs, Job
from .feeds import (
    AccessEnded,
    Ended,
    EndReason,
    Feed,
    FeedEvent,
    Group,
    Member,
    QueueSink,
    Render,
    SessionFeed,
    SidebarChange,
    SidebarFeed,
    SidebarKind,
    Sink,
)
from .notifications import Kind, Notification, entity_channel, session_channel, user_channel
from .protocol import ChannelBroker

LIMIT_EXCEEDED = LimitExceeded.code
RENDER_CACHE = 64
RENDER_CACHE_ITEM = 64 * 1024
"""The newest TurnAdded payloads a group rendered live (each up to this size) are kept, so
that members reconnecting together after a blip replay them without rendering again."""


class Hub:
    def __init__(
        self,
        store: Store,
        live: LiveAccess,
        broker: ChannelBroker,
        clock: Clock,
        *,
        queue_limit: int = 1000,
        replay_batch: int = 200,
    ) -> None:
        self._store = store
        self._live = live
        self._broker = broker
        self._clock = clock
        self.queue_limit = queue_limit
        self._batch = max(1, min(replay_batch, queue_limit // 2))
        self._groups: dict[Hashable, Group] = {}
        self._channels: dict[str, set[Group]] = {}
        self._jobs = ChannelJobs(self._handle)
        self._members = 0
        self._overflows = 0
        self._stats_sources: list[Callable[[], dict[str, int | float]]] = []
        broker.attach(self)

    # Feeds (for the resolvers)

    def session_feed(
        self,
        principal: Principal,
        session_id: str,
        after_seq: int | None,
        present: Callable[[FeedEvent], Any],
    ) -> SessionFeed:
        return SessionFeed(self, principal, session_id, after_seq, present)

    def sidebar_feed(
        self, principal: Principal, present: Callable[[FeedEvent], Any]
    ) -> SidebarFeed:
        return SidebarFeed(self, principal, present)

    # Joining and leaving

    async def attach(self, feed: Feed, key: Hashable, render: Render, sink: Sink) -> Member:
        """Join `feed`'s group `key` (made with `render` if new): replay what the feed asks
        for, then follow live. Returns once the member is live (or already ended)."""
        group = await self._group(feed, (feed.topic, key), render)
        member = Member(group, feed.principal, sink)
        group.joining -= 1
        group.members.add(member)
        self._members += 1
        if group.session_id is None:
            return member
        member.last_seq = group.cursor
        after = feed.after_seq
        if after is None or after >= group.cursor:
            if after is not None:
                member.last_seq = after
            return member
        member.replaying = True
        member.last_seq = after
        try:
            await self._replay(member, after)
        except BaseException:
            self.detach(member)
            raise
        return member

    def detach(self, member: Member) -> None:
        """The subscriber went away (complete, disconnect): forget it, silently."""
        self._forget(member)

    async def stream(self, feed: Feed) -> Any:
        """One subscriber iterating the feed itself (schema.subscribe): a private group."""
        sink = QueueSink()
        member = await self.attach(feed, ("local", id(sink)), _presenter(feed), sink)
        try:
            while True:
                item = await sink.get()
                if isinstance(item, Ended):
                    if item.reason is not None:
                        raise _error_of(item.reason)
                    return
                yield item
        finally:
            self.detach(member)

    async def _group(self, feed: Feed, key: Hashable, render: Render) -> Group:
        while True:
            group = self._groups.get(key)
            if group is None:
                group = self._open(feed, key, render)
                group.joining += 1
                try:
                    await self._prepare(group)
                except BaseException as exc:
                    group.failure = exc
                    group.ready.set()
                    group.joining -= 1
                    self._close(group)
                    raise
                group.ready.set()
                return group
            group.joining += 1
            if not group.ready.is_set():
                try:
                    await group.ready.wait()
                except BaseException:
                    group.joining -= 1
                    self._maybe_close(group)
                    raise
            if group.failure is None:
                return group
            group.joining -= 1
            if not isinstance(group.failure, asyncio.CancelledError):
                raise group.failure
            # Whoever was opening it went away: open it again.

    def _open(self, feed: Feed, key: Hashable, render: Render) -> Group:
        if isinstance(feed, SessionFeed):
            channels: tuple[str, ...] = (session_channel(feed.session_id),)
        else:
            p = feed.principal
            channels = (user_channel(p.entity_id, p.user_id), entity_channel(p.entity_id))
        group = Group(key, feed, channels, render)
        self._groups[key] = group
        for channel in channels:
            groups = self._channels.setdefault(channel, set())
            groups.add(group)
            if len(groups) == 1:
                self._broker.subscribe(channel)
        return group

    async def _prepare(self, group: Group) -> None:
        if group.session_id is None:
            return
        session = await self._store.get_session(group.session_id)
        if session is None:
            raise NotFound(f"Session {group.session_id!r} was not found.")
        newest = await self._store.list_turns(group.session_id, limit=1, newest_first=True)
        group.cursor = newest[0].seq if newest else 0
        group.stamp = session.updated_at

    def _maybe_close(self, group: Group) -> None:
        if not group.members and group.joining == 0:
            self._close(group)

    def _close(self, group: Group) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]
        for channel in group.channels:
            groups = self._channels.get(channel)
            if groups is None:
                continue
            groups.discard(group)
            if not groups:
                del self._channels[channel]
                self._jobs.drop(channel)
                self._broker.unsubscribe(channel)

    def _forget(self, member: Member) -> None:
        if member.ended:
            return
        member.ended = True
        member.buffer = []
        group = member.group
        if member in group.members:
            group.members.discard(member)
            self._members -= 1
        self._maybe_close(group)

    def _end(self, member: Member, reason: EndReason | None = None) -> None:
        if member.ended:
            return
        self._forget(member)
        member.sink.finish(reason)

    def _last_word(self, member: Member, item: Any) -> None:
        """Send `item` (past any limit, and before anything buffered by a replay, which is
        dropped), then complete the subscription."""
        if member.ended:
            return
        member.buffer = []
        member.replaying = False
        member.sink.put(item)
        self._end(member)

    def _too_slow(self, member: Member) -> None:
        self._overflows += 1
        resume = member.last_seq
        self._end(
            member,
            EndReason(
                f"too slow: resume with afterSeq {resume}",
                LIMIT_EXCEEDED,
                {"resumeAfterSeq": resume},
            ),
        )

    # Replay

    async def _replay(self, member: Member, after: int) -> None:
        group = member.group
        assert group.session_id is not None
        cursor = after
        while not member.ended:
            turns = await self._store.list_turns(
                group.session_id, after_seq=cursor, limit=self._batch
            )
            for turn in turns:
                if member.ended:
                    return
                item = await self._render_turn(group, turn)
                member.sink.put(item)
                member.last_seq = cursor = turn.seq
            if len(turns) < self._batch:
                break
            await member.sink.drained(self.queue_limit // 2)
        if member.ended:
            return
        buffered, member.buffer = member.buffer, []
        member.replaying = False
        for seq, item in buffered:
            if member.ended:
                return
            self._push(member, seq, item)

    async def _render_turn(self, group: Group, turn: Turn) -> Any:
        item = group.rendered.get(turn.seq)
        if item is None:
            item = await group.render(TurnAdded(turn))
        return item

    @staticmethod
    def _remember(group: Group, seq: int, item: Any) -> None:
        if isinstance(item, str) and len(item) > RENDER_CACHE_ITEM:
            return
        group.rendered[seq] = item
        if len(group.rendered) > RENDER_CACHE:
            group.rendered.popitem(last=False)

    # Fan-out

    def _push(self, member: Member, seq: int | None, item: Any) -> None:
        if member.ended:
            return
        if member.replaying:
            member.buffer.append((seq, item))
            if len(member.buffer) > self.queue_limit:
                self._too_slow(member)
            return
        if seq is not None and seq <= member.last_seq:
            return
        if member.sink.backlog() >= self.queue_limit:
            self._too_slow(member)
            return
        member.sink.put(item)
        if seq is not None:
            member.last_seq = seq

    async def _emit(self, group: Group, event: FeedEvent, seq: int | None = None) -> Any:
        item = await group.render(event)
        for member in list(group.members):
            self._push(member, seq, item)
        return item

    # What the broker calls

    def deliver(self, channel: str, note: Notification) -> None:
        self._enqueue(channel, note)

    def subscribed(self, channel: str, resumed: bool) -> None:
        # A group reads its cursor when it opens, possibly before the broker confirms its
        # channel: catch up on what came in between, and after an outage on everything.
        self._enqueue(channel, RESUMED if resumed else FIRST)

    def _enqueue(self, channel: str, job: Job) -> None:
        if channel in self._channels:
            self._jobs.add(channel, job)

    async def _handle(self, channel: str, job: Job) -> None:
        groups = list(self._channels.get(channel, ()))
        ready = []
        for group in groups:
            if not group.ready.is_set():
                await group.ready.wait()
            if group.failure is None:
                ready.append(group)
        if not ready:
            return
        if channel.startswith("s:"):
            await self._session_job(channel[2:], ready, job)
        else:
            await self._sidebar_job(channel, ready, job)

    # Session feeds

    async def _session_job(self, session_id: str, groups: list[Group], job: Job) -> None:
        note = job if isinstance(job, Notification) else None
        lookups = Lookups(self._store, note, session_id)
        kind = note.kind if note else None
        if job is FIRST:
            for group in groups:
                await self._advance(group, lookups)
            return
        if kind is Kind.SESSION_DELETED:
            await self._session_gone(groups, session_id)
            return
        if kind in (None, Kind.TURN_ADDED, Kind.TURN_UPDATED):
            before = {g: g.cursor for g in groups}
            for group in groups:
                await self._advance(group, lookups)
            if kind is Kind.TURN_UPDATED and note is not None and note.turn_id:
                turn = note.turn or await self._store.get_turn(note.turn_id)
                if turn is not None and turn.session_id == session_id:
                    for group in groups:
                        group.rendered.pop(turn.seq, None)
                        # A turn the group has just sent as added already has the update.
                        if turn.seq <= before[group] and group.members:
                            await self._emit(group, TurnUpdated(turn))
        if kind in (None, Kind.SESSION_UPDATED, Kind.ACCESS_REVOKED):
            session = await lookups.session()
            if session is None:
                await self._session_gone(groups, session_id)
                return
            for group in groups:
                # After an outage, only if it changed meanwhile.
                changed = kind is None and session.updated_at != group.stamp
                if kind is Kind.SESSION_UPDATED or changed:
                    group.stamp = session.updated_at
                    if group.members:
                        await self._emit(group, SessionUpdated(session))
            if kind in (None, Kind.ACCESS_REVOKED):
                await self._recheck(groups, session, await lookups.shares())

    async def _advance(self, group: Group, lookups: Lookups) -> None:
        """Send every turn after the group's cursor, in seq order."""
        while True:
            turns = await lookups.turns_after(group.cursor, self._batch)
            for turn in turns:
                if turn.seq <= group.cursor:
                    continue
                if group.members:
                    item = await group.render(TurnAdded(turn))
                    self._remember(group, turn.seq, item)
                    for member in list(group.members):
                        self._push(member, turn.seq, item)
                group.cursor = turn.seq
            if len(turns) < self._batch:
                return

    async def _session_gone(self, groups: list[Group], session_id: str) -> None:
        for group in groups:
            if not group.members:
                continue
            item = await group.render(SessionDeleted(session_id, "", ""))
            for member in list(group.members):
                self._last_word(member, item)

    async def _recheck(self, groups: list[Group], session: Session, shares: list[Share]) -> None:
        """Whoever may no longer read the session is told, then let go."""
        readable: dict[Principal, bool] = {}
        for group in groups:
            lost = []
            for member in list(group.members):
                principal = member.principal
                if principal not in readable:
                    readable[principal] = await self._live.reads(principal, session, shares)
                if not readable[principal]:
                    lost.append(member)
            if not lost:
                continue
            item = await group.render(AccessEnded(session.id, "Your access to this session ended."))
            for member in lost:
                self._last_word(member, item)

    # Sidebar feeds

    async def _sidebar_job(self, channel: str, groups: list[Group], job: Job) -> None:
        if isinstance(job, CatchUp):
            if job.resumed:
                for group in groups:
                    await self._emit(group, SidebarChange(SidebarKind.RESYNC, None))
            return
        note = job
        lookups = Lookups(self._store, note, note.session_id)
        entity_wide = channel.startswith("e:")
        for group in groups:
            principal = group.principal
            if principal is None or note.id in group.seen:
                continue
            group.seen.append(note.id)
            if entity_wide and not self._live.hears_entity_wide(principal):
                continue
            change = await sidebar_change(self._live, principal, note, lookups)
            if change is not None:
                await self._emit(group, change)

    # Life and numbers

    def add_stats(self, source: Callable[[], dict[str, int | float]]) -> None:
        self._stats_sources.append(source)

    def stats(self) -> dict[str, int | float]:
        numbers: dict[str, int | float] = {
            "groups": len(self._groups),
            "members": self._members,
            "channels": len(self._channels),
            "overflows": self._overflows,
        }
        numbers.update(self._jobs.stats())
        numbers.update(self._broker.stats())
        for source in self._stats_sources:
            numbers.update(source())
        return numbers

    async def close(self) -> None:
        for group in list(self._groups.values()):
            for member in list(group.members):
                self._end(member)
        await self._jobs.close()


def _presenter(feed: Feed) -> Render:
    async def render(event: FeedEvent) -> Any:
        return feed.present(event)

    return render


def _error_of(reason: EndReason) -> Exception:
    return LimitExceeded(reason.message)
