"""The access policy: who may do what to a session. The only place that decides it.

Anything a principal may not see answers NOT_FOUND, so that nobody learns that a
session of another entity, or of another person, exists.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

from .models import ChatApp, GranteeKind, Principal, Role, Session, Share, ShareMode, UserType


class Access(enum.IntEnum):
    NONE = 0
    READ = 1
    INTERACT = 2
    MANAGE = 3


_MODE_ACCESS = {ShareMode.READ: Access.READ, ShareMode.INTERACT: Access.INTERACT}


def access_to(
    principal: Principal,
    session: Session,
    chat_app: ChatApp | None,
    shares: Iterable[Share],
    now: datetime,
) -> Access:
    """The strongest access any rule grants `principal` on `session`.

    Roles never cross entities: an admin, auditor or service of one entity has no
    access to another entity's sessions except through a share made to them.
    """
    same_entity = principal.entity_id == session.entity_id
    granted = Access.NONE
    if same_entity:
        if session.owner_id == principal.user_id or principal.has(Role.ADMIN):
            return Access.MANAGE
        if principal.has(Role.SERVICE):
            granted = Access.INTERACT
        elif principal.has(Role.ENTITY_ADMIN) or principal.has(Role.AUDITOR):
            granted = Access.READ
    for share in shares:
        if share.is_live(now) and _share_covers(share, principal, session, chat_app):
            granted = max(granted, _MODE_ACCESS[share.mode])
    return granted


def _share_covers(
    share: Share, principal: Principal, session: Session, chat_app: ChatApp | None
) -> bool:
    same_entity = principal.entity_id == session.entity_id
    match share.grantee_kind:
        case GranteeKind.USER:
            return same_entity and share.grantee_id == principal.user_id
        case GranteeKind.ENTITY:
            return same_entity and principal.user_type is UserType.INTERNAL
        case GranteeKind.EXTERNAL:
            return (
                not same_entity
                and share.grantee_id == external_grantee_key(principal)
                and chat_app is not None
                and chat_app.settings.allow_external_sharing
            )
        case GranteeKind.LINK:
            # A link grants access only to the request that presents its token.
            return False


def external_grantee_key(principal: Principal) -> str:
    """User ids are unique within an entity only, so an external grant names both."""
    return f"{principal.entity_id}/{principal.user_id}"


def can_read(access: Access) -> bool:
    return access >= Access.READ


def can_interact(access: Access) -> bool:
    return access >= Access.INTERACT


def can_manage(access: Access) -> bool:
    return access >= Access.MANAGE


def can_verify(principal: Principal, access: Access) -> bool:
    """Verification grades come from the owner, an admin or the agent back end."""
    return access >= Access.MANAGE or (access >= Access.INTERACT and principal.has(Role.SERVICE))
