"""What live subscriptions carry and how their subscribers are grouped: the events of a
feed (domain events, and the realtime layer's own AccessEnded and SidebarChange), the
feeds that subscription resolvers return, and the members and groups the hub fans out to.
"""

from __future__ import annotations

import asyncio
import enum
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from ..domain.events import SessionDeleted, SessionUpdated, TurnAdded, TurnUpdated
from ..domain.models import Principal, Session
from ..domain.people import session_seen_by, turn_seen_by

if TYPE_CHECKING:
    from .hub import Hub

SEEN_NOTIFICATIONS = 64
"""Notification ids a sidebar group remembers, so that one heard on two channels counts once."""


# What feeds carry: domain events, and these two of the realtime layer's own.


@dataclass(frozen=True, slots=True)
class AccessEnded:
    session_id: str
    reason: str


class SidebarKind(enum.StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    SHARED = "SHARED"
    UNSHARED = "UNSHARED"
    DELETED = "DELETED"
    RESYNC = "RESYNC"


@dataclass(frozen=True, slots=True)
class SidebarChange:
    change: SidebarKind
    session_id: str | None
    session: Session | None = None


FeedEvent = TurnAdded | TurnUpdated | SessionUpdated | SessionDeleted | AccessEnded | SidebarChange
Render = Callable[[FeedEvent], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class EndReason:
    """Why the server ended a subscription (sent to the client as a GraphQL error)."""

    message: str
    code: str
    extensions: dict[str, Any] = field(default_factory=dict)


class Sink(Protocol):
    """Where a member's items go: a WebSocket operation, or a local queue."""

    def put(self, item: Any) -> None:
        """Queue one item; never blocks."""

    def backlog(self) -> int:
        """Items queued and not yet written."""

    async def drained(self, below: int) -> None:
        """Return once the backlog is under `below` (pacing of replays)."""

    def finish(self, reason: EndReason | None) -> None:
        """The subscription is over: complete it (None) or fail it with `reason`."""


# Feeds: what subscription resolvers return


def _as_seen_by(entity_id: str, present: Callable[[FeedEvent], Any]) -> Callable[[FeedEvent], Any]:
    """`present` of each event with its people as a subscriber of `entity_id` sees them."""

    def seen(event: FeedEvent) -> Any:
        match event:
            case TurnAdded(turn=turn) | TurnUpdated(turn=turn):
                event = replace(event, turn=turn_seen_by(entity_id, turn))
            case SessionUpdated(session=session) | SidebarChange(session=Session() as session):
                event = replace(event, session=session_seen_by(entity_id, session))
        return present(event)

    return seen


class SessionFeed:
    """`sessionEvents`: the resolver checked access; iterate it (one subscriber, through
    schema.subscribe), or let the WebSocket endpoint attach it to a shared group."""

    def __init__(
        self,
        hub: Hub,
        principal: Principal,
        session_id: str,
        after_seq: int | None,
        present: Callable[[FeedEvent], Any],
    ) -> None:
        self.hub = hub
        self.principal = principal
        self.session_id = session_id
        self.after_seq = after_seq
        self.present = _as_seen_by(principal.entity_id, present)

    @property
    def topic(self) -> Hashable:
        # Members of a group get one rendering: the people in it as their entity sees them.
        return ("session", self.session_id, self.principal.entity_id)

    def __aiter__(self) -> Any:
        return self.hub.stream(self)


class SidebarFeed:
    """`mySessions`: the caller's sessions and those shared with them."""

    def __init__(self, hub: Hub, principal: Principal, present: Callable[[FeedEvent], Any]) -> None:
        self.hub = hub
        self.principal = principal
        self.present = _as_seen_by(principal.entity_id, present)
        self.after_seq = None

    @property
    def topic(self) -> Hashable:
        # Members of a sidebar group share its access decisions: one principal per group.
        return ("sidebar", self.principal)

    def __aiter__(self) -> Any:
        return self.hub.stream(self)


Feed = SessionFeed | SidebarFeed


class Member:
    __slots__ = ("buffer", "ended", "group", "last_seq", "principal", "replaying", "sink")

    def __init__(self, group: Group, principal: Principal, sink: Sink) -> None:
        self.group = group
        self.principal = principal
        self.sink = sink
        self.last_seq = 0
        self.replaying = False
        self.buffer: list[tuple[int | None, Any]] = []
        self.ended = False


class Group:
    def __init__(
        self, key: Hashable, feed: Feed, channels: tuple[str, ...], render: Render
    ) -> None:
        self.key = key
        self.session_id = feed.session_id if isinstance(feed, SessionFeed) else None
        self.principal = feed.principal if isinstance(feed, SidebarFeed) else None
        self.channels = channels
        self.render = render
        self.members: set[Member] = set()
        self.joining = 0
        self.cursor = 0
        self.stamp: Any = None
        self.ready = asyncio.Event()
        self.failure: BaseException | None = None
        self.rendered: OrderedDict[int, Any] = OrderedDict()
        self.seen: deque[str] = deque(maxlen=SEEN_NOTIFICATIONS)


# The local sink (schema.subscribe and tests)


@dataclass(frozen=True, slots=True)
class Ended:
    """Queued after a local member's last item: how its subscription ended."""

    reason: EndReason | None


class QueueSink:
    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._changed = asyncio.Event()

    def put(self, item: Any) -> None:
        self._items.append(item)
        self._changed.set()

    def backlog(self) -> int:
        return len(self._items)

    async def drained(self, below: int) -> None:
        while len(self._items) >= below:
            self._changed.clear()
            await self._changed.wait()

    def finish(self, reason: EndReason | None) -> None:
        self.put(Ended(reason))

    async def get(self) -> Any:
        while not self._items:
            self._changed.clear()
            await self._changed.wait()
        item = self._items.popleft()
        self._changed.set()
        return item
