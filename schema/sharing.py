"""The GraphQL type of a share."""

from __future__ import annotations

from datetime import datetime

import strawberry

from ..domain import models
from .enums import (
    GranteeKind,
    ShareMode,
)


def optional_id(value: str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(value)


@strawberry.type
class Share:
    id: strawberry.ID
    session_id: strawberry.ID
    grantee_kind: GranteeKind
    grantee_entity_id: strawberry.ID | None
    grantee_user_id: strawberry.ID | None
    mode: ShareMode
    created_by: strawberry.ID
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: strawberry.ID | None
    live: bool
    link_token: str | None = strawberry.field(
        description="For a LINK share, the token to pass to sessionByShareLink. Given once, "
        "in the answer to shareSession; only its hash is kept."
    )

    @classmethod
    def of(cls, share: models.Share, now: datetime, link_token: str | None = None) -> Share:
        return cls(
            id=strawberry.ID(share.id),
            session_id=strawberry.ID(share.session_id),
            grantee_kind=share.grantee_kind,
            grantee_entity_id=optional_id(share.grantee_entity_id),
            grantee_user_id=optional_id(share.grantee_user_id),
            mode=share.mode,
            created_by=strawberry.ID(share.created_by),
            created_at=share.created_at,
            expires_at=share.expires_at,
            revoked_at=share.revoked_at,
            revoked_by=optional_id(share.revoked_by),
            live=share.is_live(now),
            link_token=link_token,
        )
