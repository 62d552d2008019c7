"""Sharing: grants, revocation, links, and what others shared with me."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_field, auth_mutation
from ..domain.dates import time_zone
from ..domain.pagination import encode_keyset_cursor
from ..domain.sharing import SHARED_CURSOR, ShareSession
from ..schema.inputs import ShareInput
from ..schema.sharing import Share
from ..schema.types import Session, SessionConnection
from .context import Context
from .roles import OWNERS, PEOPLE
from .sessions import session_connection


async def _share_session(info: Info[Context, None], input: ShareInput) -> Share:
    ctx = info.context
    made = await ctx.services.sharing.share(
        ctx.require_principal(),
        ShareSession(
            session_id=input.session_id,
            grantee_kind=input.grantee_kind,
            mode=input.mode,
            user_id=input.user_id,
            entity_id=input.entity_id,
            expires_at=input.expires_at,
        ),
    )
    return Share.of(made.share, ctx.services.clock.now(), made.link_token)


async def _revoke_share(info: Info[Context, None], id: strawberry.ID) -> Share:
    ctx = info.context
    return Share.of(
        await ctx.services.sharing.revoke(ctx.require_principal(), id), ctx.services.clock.now()
    )


async def _session_by_share_link(info: Info[Context, None], token: str) -> Session:
    view = await info.context.services.sharing.open_link(info.context.require_principal(), token)
    return Session.of(view)


async def _shared_with_me(
    info: Info[Context, None],
    first: int | None = 30,
    after: str | None = None,
    time_zone_name: Annotated[str | None, strawberry.argument(name="timeZone")] = None,
) -> SessionConnection:
    ctx = info.context
    principal = ctx.require_principal()
    zone = time_zone(time_zone_name or principal.time_zone)
    page = await ctx.services.sharing.shared_with_me(principal, first, after)
    return session_connection(
        [(view, encode_keyset_cursor(SHARED_CURSOR, cursor)) for view, cursor in page.items],
        has_next=page.has_next,
        has_previous=after is not None,
        now=ctx.services.clock.now(),
        zone=zone,
    )


@strawberry.type
class SharingQueries:
    shared_with_me: SessionConnection = auth_field(
        _shared_with_me,
        requires=PEOPLE,
        description="Sessions others shared with the caller by a live share, newest share first.",
    )
    session_by_share_link: Session = auth_field(
        _session_by_share_link,
        requires=PEOPLE,
        description="Open a session with a link token; NOT_FOUND when unknown, revoked or "
        "expired. Afterwards the session is reachable by id for as long as the link lives.",
    )


@strawberry.type
class SharingMutations:
    share_session: Share = auth_mutation(
        _share_session,
        requires=OWNERS,
        description="Grant the session to a user, the entity, an external user or a link.",
    )
    revoke_share: Share = auth_mutation(
        _revoke_share, requires=OWNERS, description="End a share at once."
    )
