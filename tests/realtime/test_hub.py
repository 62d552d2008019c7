"""The hub inside the running app: one rendering per group per event whatever the group's
size, a bounded backlog that ends a subscriber who falls behind (and tells it where to
resume), and feeds iterated directly through schema.subscribe."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from sessionhub.domain.clock import new_id
from sessionhub.domain.commands import SendMessage
from sessionhub.domain.events import SessionUpdated, TurnAdded
from sessionhub.domain.models import NewTurn, Principal, TitleSource, TurnRole
from sessionhub.realtime.feeds import EndReason, FeedEvent, SidebarChange
from sessionhub.realtime.notifications import session_channel, user_channel
from sessionhub.resolvers.subscriptions import session_event, session_list_event

if TYPE_CHECKING:
    from tests.support.live import Live

EVENTS = """subscription Events($id: ID!, $after: Int) {
  sessionEvents(sessionId: $id, afterSeq: $after) { __typename ... on TurnAdded { seq } }
}"""


class StuckSink:
    """A subscriber whose socket never drains: everything stays in its backlog."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.ended: list[EndReason | None] = []

    def put(self, item: Any) -> None:
        self.items.append(item)

    def backlog(self) -> int:
        return len(self.items)

    async def drained(self, below: int) -> None:
        raise AssertionError("a live-only member never waits")

    def finish(self, reason: EndReason | None) -> None:
        self.ended.append(reason)


class KeepingUp(StuckSink):
    """A subscriber whose socket writes everything at once."""

    def backlog(self) -> int:
        return 0


def _alice() -> Principal:
    return Principal("alice", "acme")


def test_one_rendering_per_event_for_a_thousand_members(live: Live) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice)
    hub = live.components.services.realtime
    rendered: list[FeedEvent] = []

    async def render(event: FeedEvent) -> Any:
        rendered.append(event)
        return f"payload {len(rendered)}"

    sinks = [StuckSink() for _ in range(1000)]

    async def join() -> None:
        for sink in sinks:
            feed = hub.session_feed(_alice(), session_id, None, session_event)
            await hub.attach(feed, "same document", render, sink)

    live.client.portal.call(join)
    assert hub.stats()["groups"] == 1
    live.send(alice, session_id, "to a thousand")
    _until(lambda: all(s.items for s in sinks))
    assert len(rendered) == 1 and isinstance(rendered[0], TurnAdded)
    assert {s.items[0] for s in sinks} == {"payload 1"}


def test_a_member_that_falls_behind_is_ended_with_where_to_resume(
    live_factory: Callable[..., Live],
) -> None:
    live = live_factory(subscription_queue_limit=10)
    alice = live.token("alice")
    session_id = live.new_session(alice)
    hub = live.components.services.realtime
    stuck, healthy = StuckSink(), KeepingUp()

    async def join() -> None:
        feed = hub.session_feed(_alice(), session_id, None, session_event)
        await hub.attach(feed, "stuck", _render, stuck)
        feed = hub.session_feed(_alice(), session_id, None, session_event)
        await hub.attach(feed, "healthy", _render, healthy)

    live.client.portal.call(join)
    for i in range(12):
        live.send(alice, session_id, f"turn {i + 2}")
    _until(lambda: stuck.ended)
    assert len(stuck.items) == 10
    assert stuck.items[-1] == 11
    assert stuck.ended == [
        EndReason("too slow: resume with afterSeq 11", "LIMIT_EXCEEDED", {"resumeAfterSeq": 11})
    ]
    _until(lambda: len(healthy.items) == 12)
    assert healthy.ended == []
    stats = hub.stats()
    assert (stats["overflows"], stats["members"]) == (1, 1)

    # Resuming where it was told loses nothing.
    with live.connect() as ws:
        ws.init(alice)
        ws.subscribe("1", EVENTS, {"id": session_id, "after": 11})
        assert [ws.event("1")["seq"] for _ in range(2)] == [12, 13]


def test_schema_subscribe_serves_a_single_subscriber(live: Live) -> None:
    alice = live.token("alice")
    session_id = live.new_session(alice, "first")
    components = live.components
    schema = live.client.app.state.schema  # type: ignore[attr-defined]

    async def follow() -> tuple[list[Any], dict[str, Any]]:
        context = components.context(_alice(), "test")
        stream = await schema.subscribe(EVENTS, {"id": session_id, "after": 0}, context)
        first = await anext(stream)
        await components.services.conversation.send_message(
            _alice(), SendMessage(content="second", session_id=session_id)
        )
        second = await anext(stream)
        during = components.services.realtime.stats()
        await stream.aclose()
        return [first.data, second.data], during

    (first, second), during = live.client.portal.call(follow)
    assert first == {"sessionEvents": {"__typename": "TurnAdded", "seq": 1}}
    assert second == {"sessionEvents": {"__typename": "TurnAdded", "seq": 2}}
    assert during["members"] == 1
    assert live.stats()["members"] == 0


def test_after_a_broker_outage_groups_catch_up_from_the_store(live: Live) -> None:
    """What the hub does when a broker says a channel may have missed notifications
    (Redis came back): turns committed meanwhile are read from the store and sent, the
    session's new title comes as SessionUpdated, and sidebars are told to RESYNC."""
    alice = live.token("alice")
    session_id = live.new_session(alice)
    components = live.components
    hub, store = components.services.realtime, components.store
    follower, sidebar = KeepingUp(), KeepingUp()

    async def join() -> None:
        feed = hub.session_feed(_alice(), session_id, None, session_event)
        await hub.attach(feed, "follow", _describe, follower)
        await hub.attach(hub.sidebar_feed(_alice(), session_list_event), "side", _describe, sidebar)

    async def behind_the_brokers_back() -> None:
        # Written to the store without a notification, as when Redis was down.
        for i in (2, 3):
            turn = NewTurn(
                new_id(),
                session_id,
                TurnRole.USER,
                "alice",
                f"missed {i}",
                utc_now(),
                author_entity_id="acme",
            )
            await store.append_turn(turn, 100)
        await store.rename_session(session_id, "Renamed meanwhile", TitleSource.MANUAL, utc_now())
        hub.subscribed(session_channel(session_id), True)
        hub.subscribed(user_channel("acme", "alice"), True)

    live.client.portal.call(join)
    live.client.portal.call(behind_the_brokers_back)
    _until(lambda: len(follower.items) == 3 and sidebar.items)
    assert follower.items == ["TurnAdded 2", "TurnAdded 3", "SessionUpdated Renamed meanwhile"]
    assert sidebar.items == ["RESYNC"]


async def _describe(event: FeedEvent) -> Any:
    match event:
        case TurnAdded(turn=turn):
            return f"TurnAdded {turn.seq}"
        case SessionUpdated(session=session):
            return f"SessionUpdated {session.title}"
        case SidebarChange(change=change):
            return change.value
    return type(event).__name__


async def _render(event: FeedEvent) -> Any:
    assert isinstance(event, TurnAdded)
    return event.turn.seq


def utc_now() -> datetime:
    return datetime.now(UTC)


def _until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.01)
