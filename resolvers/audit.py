"""The audit trail, for those who keep watch over an entity."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_field
from ..domain.audit import AUDIT_CURSOR
from ..domain.models import AuditFilter as DomainAuditFilter
from ..domain.models import KeysetCursor, Role
from ..domain.pagination import encode_keyset_cursor
from ..schema.audit import AuditConnection, AuditEdge, AuditEvent
from ..schema.inputs import AuditFilter
from ..schema.turns import PageInfo
from .context import Context


async def _audit_log(
    info: Info[Context, None],
    filter: AuditFilter | None = None,
    first: int | None = 50,
    after: str | None = None,
) -> AuditConnection:
    f = filter or AuditFilter()
    page = await info.context.services.audit.list(
        info.context.require_principal(),
        DomainAuditFilter(
            actor_id=f.actor_id,
            action=f.action,
            session_id=f.session_id,
            since=f.since,
            until=f.until,
        ),
        first,
        after,
    )
    edges = [
        AuditEdge(
            cursor=encode_keyset_cursor(AUDIT_CURSOR, KeysetCursor(e.at, e.id)),
            node=AuditEvent.of(e),
        )
        for e in page.events
    ]
    return AuditConnection(
        edges=edges,
        page_info=PageInfo.of(
            [e.cursor for e in edges], has_next=page.has_next, has_previous=after is not None
        ),
    )


@strawberry.type
class AuditQueries:
    audit_log: AuditConnection = auth_field(
        _audit_log,
        requires=[Role.AUDITOR, Role.ENTITY_ADMIN, Role.ADMIN],
        description="The entity's audit events, newest first. Nothing here can be changed.",
    )
