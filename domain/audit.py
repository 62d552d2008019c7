"""The audit trail: what gets recorded about a session or a session template, and who may
read the record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clock import new_id
from .errors import Forbidden, InvalidInput
from .models import AuditEvent, AuditFilter, EntityTemplate, KeysetCursor, Principal, Session
from .pagination import decode_keyset_cursor, page_size
from .policy import sees_whole_entity
from .ports import Store

AUDIT_CURSOR = "a"


def audit_event(
    principal: Principal, session: Session, action: str, at: datetime, **details: Any
) -> AuditEvent:
    """An event about `session`, filed under the session's entity. An actor from another
    entity (an external grantee) is named with its entity in the details."""
    if principal.entity_id != session.entity_id:
        details["actorEntityId"] = principal.entity_id
    return AuditEvent(
        id=new_id(),
        entity_id=session.entity_id,
        actor_id=principal.user_id,
        action=action,
        target=f"session:{session.id}",
        at=at,
        details={k: _plain(v) for k, v in details.items()},
    )


def template_audit_event(
    principal: Principal, template: EntityTemplate, action: str, at: datetime, **details: Any
) -> AuditEvent:
    """An event about a template an admin defined, filed under the template's entity with
    the target `template:<id>` (session events have `session:<id>`)."""
    return AuditEvent(
        id=new_id(),
        entity_id=template.entity_id,
        actor_id=principal.user_id,
        action=action,
        target=f"template:{template.id}",
        at=at,
        details={k: _plain(v) for k, v in details.items()},
    )


def deletion_event(
    principal: Principal, session: Session, at: datetime, **details: Any
) -> AuditEvent:
    """`session.deleted`, with what the trail keeps of what went."""
    return audit_event(
        principal,
        session,
        "session.deleted",
        at,
        chatAppId=session.chat_app_id,
        ownerId=session.owner_id,
        turnCount=session.turn_count,
        **details,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "name") and hasattr(value, "value"):  # enums
        return value.name
    return value


@dataclass(slots=True)
class AuditPage:
    events: list[AuditEvent]
    has_next: bool


class AuditService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def list(
        self, principal: Principal, audit_filter: AuditFilter, first: int | None, after: str | None
    ) -> AuditPage:
        if not sees_whole_entity(principal):
            raise Forbidden("The audit log is for auditors, entity admins and admins.")
        if (
            audit_filter.since is not None
            and audit_filter.until is not None
            and audit_filter.since >= audit_filter.until
        ):
            raise InvalidInput("'from' must be before 'to'.")
        limit = page_size(first, 50)
        cursor: KeysetCursor | None = decode_keyset_cursor(AUDIT_CURSOR, after) if after else None
        events = await self._store.list_audit(principal.entity_id, audit_filter, cursor, limit + 1)
        return AuditPage(events[:limit], len(events) > limit)
