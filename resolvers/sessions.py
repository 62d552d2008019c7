"""Query and Mutation fields about sessions as a whole."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_field, auth_mutation
from ..domain.access import SessionView
from ..domain.commands import CreateSession
from ..domain.dates import date_group, time_zone
from ..domain.models import SessionCursor, SessionStatus
from ..domain.models import SessionFilter as DomainSessionFilter
from ..domain.pagination import encode_session_cursor
from ..schema.chat_apps import ChatApp
from ..schema.inputs import CreateSessionInput, SessionFilter
from ..schema.turns import PageInfo
from ..schema.types import Principal, Session, SessionConnection, SessionEdge
from .context import Context
from .roles import OWNERS, PEOPLE, WRITERS

# The agent back end marks sessions completed too.
STATUS_SETTERS = WRITERS


def _me(info: Info[Context, None]) -> Principal:
    return Principal.of(info.context.require_principal())


async def _session(info: Info[Context, None], id: strawberry.ID) -> Session | None:
    view = await info.context.services.access.find(info.context.require_principal(), id)
    return Session.of(view) if view else None


async def _sessions(
    info: Info[Context, None],
    filter: SessionFilter | None = None,
    first: int | None = 30,
    after: str | None = None,
    time_zone_name: Annotated[
        str | None,
        strawberry.argument(
            name="timeZone",
            description="IANA zone for dateGroup; the token's `tz`, else UTC, when absent.",
        ),
    ] = None,
) -> SessionConnection:
    ctx = info.context
    principal = ctx.require_principal()
    zone = time_zone(time_zone_name or principal.time_zone)
    f = filter or SessionFilter()
    page = await ctx.services.sessions.page(
        principal,
        DomainSessionFilter(
            chat_app_ids=tuple(f.chat_app_ids or ()),
            archived=f.archived,
            tag=f.tag,
            all_owners=f.all_owners,
        ),
        first,
        after,
    )
    return session_connection(
        [
            (
                view,
                encode_session_cursor(
                    SessionCursor(view.session.last_activity_at, view.session.id)
                ),
            )
            for view in page.items
        ],
        has_next=page.has_next,
        has_previous=after is not None,
        now=ctx.services.clock.now(),
        zone=zone,
    )


def _cursor_of(view: SessionView) -> SessionCursor:
    return SessionCursor(view.session.last_activity_at, view.session.id)


def session_connection(
    items: list[tuple[SessionView, str]],
    *,
    has_next: bool,
    has_previous: bool,
    now: datetime,
    zone: ZoneInfo,
) -> SessionConnection:
    edges = [
        SessionEdge(
            cursor=cursor,
            node=Session.of(view),
            date_group=date_group(view.session.last_activity_at, now, zone),
        )
        for view, cursor in items
    ]
    return SessionConnection(
        edges=edges,
        page_info=PageInfo.of(
            [e.cursor for e in edges], has_next=has_next, has_previous=has_previous
        ),
    )


async def _pinned_sessions(info: Info[Context, None]) -> list[Session]:
    views = await info.context.services.sessions.pinned(info.context.require_principal())
    return [Session.of(v) for v in views]


def _chat_apps(info: Info[Context, None]) -> list[ChatApp]:
    return [ChatApp.of(app) for app in info.context.services.sessions.chat_apps()]


@strawberry.type
class SessionQueries:
    me: Principal = auth_field(_me)
    session: Session | None = auth_field(
        _session, description="The session, or null when it does not exist or is not visible."
    )
    sessions: SessionConnection = auth_field(
        _sessions, description="The caller's sessions, most recent activity first."
    )
    pinned_sessions: list[Session] = auth_field(_pinned_sessions, requires=PEOPLE)
    chat_apps: list[ChatApp] = auth_field(_chat_apps)


async def _create_session(info: Info[Context, None], input: CreateSessionInput) -> Session:
    view = await info.context.services.conversation.create(
        info.context.require_principal(),
        CreateSession(
            chat_app_id=input.chat_app_id,
            title=input.title,
            tags=list(input.tags or ()),
            metadata=input.metadata,
            agent_context=input.agent_context,
            on_behalf_of=input.on_behalf_of,
            template_id=input.template_id,
        ),
    )
    return Session.of(view)


async def _rename_session(info: Info[Context, None], id: strawberry.ID, title: str) -> Session:
    return Session.of(
        await info.context.services.sessions.rename(info.context.require_principal(), id, title)
    )


async def _pin_session(info: Info[Context, None], id: strawberry.ID) -> Session:
    view = await info.context.services.sessions.set_pinned(
        info.context.require_principal(), id, True
    )
    return Session.of(view)


async def _unpin_session(info: Info[Context, None], id: strawberry.ID) -> Session:
    view = await info.context.services.sessions.set_pinned(
        info.context.require_principal(), id, False
    )
    return Session.of(view)


async def _archive_session(info: Info[Context, None], id: strawberry.ID) -> Session:
    view = await info.context.services.sessions.set_archived(
        info.context.require_principal(), id, True
    )
    return Session.of(view)


async def _unarchive_session(info: Info[Context, None], id: strawberry.ID) -> Session:
    view = await info.context.services.sessions.set_archived(
        info.context.require_principal(), id, False
    )
    return Session.of(view)


async def _delete_session(info: Info[Context, None], id: strawberry.ID) -> bool:
    await info.context.services.sessions.delete(info.context.require_principal(), id)
    return True


async def _complete_session(info: Info[Context, None], id: strawberry.ID) -> Session:
    view = await info.context.services.sessions.set_status(
        info.context.require_principal(), id, SessionStatus.COMPLETED
    )
    return Session.of(view)


async def _reopen_session(info: Info[Context, None], id: strawberry.ID) -> Session:
    view = await info.context.services.sessions.set_status(
        info.context.require_principal(), id, SessionStatus.ACTIVE
    )
    return Session.of(view)


@strawberry.type
class SessionMutations:
    create_session: Session = auth_mutation(
        _create_session, requires=WRITERS, description="Create an empty session through the API."
    )
    rename_session: Session = auth_mutation(
        _rename_session,
        requires=OWNERS,
        description="A manual title; automatic ones never replace it.",
    )
    pin_session: Session = auth_mutation(_pin_session, requires=PEOPLE)
    unpin_session: Session = auth_mutation(_unpin_session, requires=PEOPLE)
    archive_session: Session = auth_mutation(_archive_session, requires=OWNERS)
    unarchive_session: Session = auth_mutation(_unarchive_session, requires=OWNERS)
    complete_session: Session = auth_mutation(
        _complete_session,
        requires=STATUS_SETTERS,
        description="Mark the session COMPLETED (its owner, an admin or the agent service).",
    )
    reopen_session: Session = auth_mutation(
        _reopen_session,
        requires=STATUS_SETTERS,
        description="Mark a COMPLETED session ACTIVE again.",
    )
    delete_session: bool = auth_mutation(
        _delete_session,
        requires=OWNERS,
        description="Delete the session with its turns, pins and shares; an audit event remains.",
    )
