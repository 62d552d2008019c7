"""Subscription fields: a session's live events and the caller's sidebar.

The resolvers check who may follow what (through @auth and the access policy, like any
read) and return a feed of the realtime hub. The WebSocket endpoint attaches the feed to
a shared group that renders each event once for all its subscribers; iterated directly
(schema.subscribe), a feed serves its one subscriber.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_subscription
from ..domain.errors import InvalidInput
from ..domain.events import SessionDeleted, SessionUpdated, TurnAdded, TurnUpdated
from ..realtime.feeds import AccessEnded, FeedEvent, SidebarChange
from ..schema.events import (
    AccessRevokedEvent,
    SessionDeletedEvent,
    SessionEvent,
    SessionInfo,
    SessionListChange,
    SessionListEvent,
    SessionUpdatedEvent,
    TurnAddedEvent,
    TurnUpdatedEvent,
)
from ..schema.turns import Turn
from .context import Context
from .roles import PEOPLE


def session_event(event: FeedEvent) -> object:
    """The GraphQL value of one event of `sessionEvents`."""
    match event:
        case TurnAdded(turn=turn):
            return TurnAddedEvent(
                session_id=strawberry.ID(turn.session_id), seq=turn.seq, turn=Turn.of(turn)
            )
        case TurnUpdated(turn=turn):
            return TurnUpdatedEvent(
                session_id=strawberry.ID(turn.session_id), seq=turn.seq, turn=Turn.of(turn)
            )
        case SessionUpdated(session=session):
            return SessionUpdatedEvent(
                session_id=strawberry.ID(session.id), session=SessionInfo.of(session)
            )
        case AccessEnded(session_id=session_id, reason=reason):
            return AccessRevokedEvent(session_id=strawberry.ID(session_id), reason=reason)
        case SessionDeleted(session_id=session_id):
            return SessionDeletedEvent(session_id=strawberry.ID(session_id))
    raise TypeError(f"not a session event: {event!r}")


def session_list_event(event: FeedEvent) -> object:
    """The GraphQL value of one event of `mySessions`."""
    if not isinstance(event, SidebarChange):
        raise TypeError(f"not a sidebar event: {event!r}")
    return SessionListEvent(
        change=SessionListChange(event.change.value),
        session_id=strawberry.ID(event.session_id) if event.session_id else None,
        session=SessionInfo.of(event.session) if event.session else None,
    )


async def _session_events(
    info: Info[Context, None], session_id: strawberry.ID, after_seq: int | None = None
) -> AsyncIterable[SessionEvent]:
    ctx = info.context
    principal = ctx.require_principal()
    if after_seq is not None and after_seq < 0:
        raise InvalidInput("afterSeq must be 0 or more.")
    # NOT_FOUND unless the caller may read it, as for any read; audited like one.
    view = await ctx.services.access.view(principal, session_id)
    return ctx.services.realtime.session_feed(principal, view.session.id, after_seq, session_event)


async def _my_sessions(info: Info[Context, None]) -> AsyncIterable[SessionListEvent]:
    ctx = info.context
    return ctx.services.realtime.sidebar_feed(ctx.require_principal(), session_list_event)


@strawberry.type
class SessionSubscriptions:
    session_events: SessionEvent = auth_subscription(
        _session_events,
        description="Every turn after `afterSeq` from the store (TurnAdded each, in seq "
        "order), then live events of the session without gaps or duplicates. Without "
        "`afterSeq`, live events only. Ends after AccessRevoked or SessionDeleted.",
    )
    my_sessions: SessionListEvent = auth_subscription(
        _my_sessions,
        requires=PEOPLE,
        description="The caller's sidebar: sessions created, updated, shared with them, "
        "unshared or deleted.",
    )
