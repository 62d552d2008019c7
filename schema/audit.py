"""GraphQL types of the audit trail."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from ..domain import models
from .turns import (
    PageInfo,
)


@strawberry.type
class AuditEvent:
    id: strawberry.ID
    actor_id: strawberry.ID
    action: str
    target: str
    at: datetime
    details: JSON | None

    @classmethod
    def of(cls, event: models.AuditEvent) -> AuditEvent:
        return cls(
            id=strawberry.ID(event.id),
            actor_id=strawberry.ID(event.actor_id),
            action=event.action,
            target=event.target,
            at=event.at,
            details=event.details,
        )


@strawberry.type
class AuditEdge:
    cursor: str
    node: AuditEvent


@strawberry.type
class AuditConnection:
    edges: list[AuditEdge]
    page_info: PageInfo
