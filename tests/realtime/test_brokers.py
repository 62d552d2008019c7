"""The brokers on their own: routing of domain events to channels, the in-process broker,
and the Redis broker against a real redis-server that the test starts, stops and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from sessionhub.domain.events import (
    AccessRevoked,
    SessionCreated,
    SessionDeleted,
    SessionUpdated,
    ShareGranted,
    TurnAdded,
)
from sessionhub.domain.models import (
    GranteeKind,
    Session,
    Share,
    ShareMode,
    TitleSource,
    Turn,
    TurnRole,
)
from sessionhub.realtime.memory import InProcessBroker
from sessionhub.realtime.notifications import Kind, Notification, Router
from sessionhub.realtime.redis import RedisBroker

if TYPE_CHECKING:
    from conftest import RedisServer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _session(session_id: str = "s1") -> Session:
    return Session(session_id, "acme", "team", "alice", "T", TitleSource.MANUAL, NOW, NOW, NOW)


def _turn(seq: int, session_id: str = "s1") -> Turn:
    return Turn(
        f"t{seq}",
        session_id,
        seq,
        TurnRole.USER,
        "alice",
        f"turn {seq}",
        NOW,
        entity_id="acme",
        author_entity_id="acme",
    )


def _share(kind: GranteeKind, user: str | None = "bob", entity: str | None = "acme") -> Share:
    return Share(
        "sh1", "s1", "acme", kind, entity, user, ShareMode.READ, "alice", NOW, revoked_at=None
    )


class Recorder:
    """A receiver that writes down what the broker hands it."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, Notification]] = []
        self.confirmed: list[tuple[str, bool]] = []
        self.changed = asyncio.Event()

    def deliver(self, channel: str, note: Notification) -> None:
        self.notes.append((channel, note))
        self.changed.set()

    def subscribed(self, channel: str, resumed: bool) -> None:
        self.confirmed.append((channel, resumed))
        self.changed.set()

    async def wait_for(self, condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out; notes={self.notes} confirmed={self.confirmed}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


async def until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        await asyncio.sleep(0.01)


# Routing


async def test_each_event_goes_to_the_channels_of_those_it_concerns() -> None:
    router = Router(None)

    added = await router.route(TurnAdded(_turn(3)))
    assert [c for c, _ in added] == ["s:s1"]
    assert added[0][1].kind is Kind.TURN_ADDED and added[0][1].seq == 3

    created = await router.route(SessionCreated(_session()))
    assert [c for c, _ in created] == ["u:acme:alice"]

    updated = await router.route(SessionUpdated(_session()))
    assert [c for c, _ in updated] == ["s:s1", "u:acme:alice"]

    user_share = _share(GranteeKind.USER)
    deleted = await router.route(SessionDeleted("s1", "acme", "alice", (user_share,)))
    assert [c for c, _ in deleted] == ["s:s1", "u:acme:alice", "u:acme:bob"]
    assert len({n.id for _, n in deleted}) == 1, "one id on every channel"

    granted = await router.route(ShareGranted(_share(GranteeKind.ENTITY, None)))
    assert [c for c, _ in granted] == ["e:acme"]

    external = _share(GranteeKind.EXTERNAL, "erin", "globex")
    revoked = await router.route(AccessRevoked(external))
    assert [c for c, _ in revoked] == ["s:s1", "u:globex:erin"]
    assert revoked[0][1].share_id == "sh1"


def test_notifications_cross_as_small_json() -> None:
    note = Notification("n1", Kind.TURN_ADDED, "s1", seq=7, turn_id="t7")
    raw = note.to_json()
    assert len(raw) < 120
    assert Notification.from_json(raw) == note
    with pytest.raises(ValueError):
        Notification.from_json(b'{"kind": "nope"}')


# In process


async def test_in_process_broker_delivers_subscribed_channels_only() -> None:
    broker = InProcessBroker()
    heard: list[object] = []
    broker.listen(heard.append)
    recorder = Recorder()
    broker.attach(recorder)
    broker.subscribe("s:s1")
    assert recorder.confirmed == [("s:s1", False)]

    await broker.publish(TurnAdded(_turn(1)))
    await broker.publish(TurnAdded(_turn(1, session_id="other")))
    assert [(c, n.seq) for c, n in recorder.notes] == [("s:s1", 1)]
    assert len(heard) == 2, "listeners hear every event"

    broker.unsubscribe("s:s1")
    await broker.publish(TurnAdded(_turn(2)))
    assert len(recorder.notes) == 1
    assert broker.stats()["broker_channels"] == 0


# Redis


async def _started(url: str, **options: float) -> tuple[RedisBroker, Recorder]:
    broker = RedisBroker(url, Router(None), **options)
    recorder = Recorder()
    broker.attach(recorder)
    await broker.start()
    await until(lambda: broker.stats()["redis_connected"])
    return broker, recorder


async def test_redis_carries_a_notification_from_one_instance_to_another(
    redis_server: RedisServer,
) -> None:
    a, heard_a = await _started(redis_server.url)
    b, heard_b = await _started(redis_server.url)
    try:
        a.subscribe("s:s1")
        b.subscribe("s:s1")
        await heard_a.wait_for(lambda: heard_a.confirmed)
        await heard_b.wait_for(lambda: heard_b.confirmed)
        assert heard_b.confirmed == [("s:s1", False)]

        await a.publish(TurnAdded(_turn(5)))
        await heard_b.wait_for(lambda: heard_b.notes)
        assert [(c, n.kind, n.seq) for c, n in heard_b.notes] == [("s:s1", Kind.TURN_ADDED, 5)]
        # The publisher hears its own event at once, and only once (not again from Redis).
        assert [(c, n.seq) for c, n in heard_a.notes] == [("s:s1", 5)]
        await b.publish(TurnAdded(_turn(6)))
        await heard_a.wait_for(lambda: len(heard_a.notes) == 2)
        await asyncio.sleep(0.1)
        assert [n.seq for _, n in heard_a.notes] == [5, 6]
        assert [n.seq for _, n in heard_b.notes] == [5, 6]
    finally:
        await a.close()
        await b.close()


async def test_one_redis_connection_subscribes_every_channel(redis_server: RedisServer) -> None:
    broker, heard = await _started(redis_server.url)
    try:
        channels = [f"s:session-{i}" for i in range(200)]
        for channel in channels:
            broker.subscribe(channel)
        await heard.wait_for(lambda: len(heard.confirmed) == 200)
        with redis_server.client() as client:
            subscribers = [c for c in client.client_list() if int(c["sub"]) > 0]
        assert len(subscribers) == 1
        assert int(subscribers[0]["sub"]) == 200
        assert broker.stats()["redis_channels_subscribed"] == 200

        for channel in channels:
            broker.unsubscribe(channel)
        deadline = time.monotonic() + 5
        while redis_server.channels() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert redis_server.channels() == []
        assert broker.stats()["broker_channels"] == 0
    finally:
        await broker.close()


async def test_redis_outage_loses_nothing_and_never_fails_a_publish(
    redis_server: RedisServer,
) -> None:
    fast = {"backoff_min": 0.02, "backoff_max": 0.2, "ping_interval": 1.0}
    a, _ = await _started(redis_server.url, **fast)
    b, heard_b = await _started(redis_server.url, **fast)
    try:
        b.subscribe("s:s1")
        await heard_b.wait_for(lambda: heard_b.confirmed)
        await a.publish(TurnAdded(_turn(1)))
        await heard_b.wait_for(lambda: len(heard_b.notes) == 1)
        assert b.problem() is None

        redis_server.stop()
        await until(lambda: not b.stats()["redis_connected"])
        assert "Redis does not answer" in (b.problem() or "")
        started = time.monotonic()
        for seq in (2, 3):
            await a.publish(TurnAdded(_turn(seq)))
        assert time.monotonic() - started < 0.05, "publishing never waits for Redis"
        await until(lambda: a.stats()["redis_publish_failures"] >= 1)
        assert a.stats()["redis_publish_backlog"] == 2

        redis_server.start()
        # Pub/sub keeps nothing for absent subscribers, so B may or may not hear 2 and 3
        # (whichever of A's publisher and B's subscriber reconnects first). What it must
        # do is say that the channel may have missed notifications: the hub then reads the
        # store after each group's cursor. A sends its backlog once Redis is back.
        await heard_b.wait_for(lambda: ("s:s1", True) in heard_b.confirmed)
        assert b.problem() is None
        await until(lambda: a.stats()["redis_publish_backlog"] == 0)
        assert a.stats()["redis_published"] == 3
        assert b.stats()["redis_reconnects"] >= 1
        await a.publish(TurnAdded(_turn(4)))
        await heard_b.wait_for(lambda: heard_b.notes[-1][1].seq == 4)
        assert heard_b.notes[0][1].seq == 1
    finally:
        await a.close()
        await b.close()
