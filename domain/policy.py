"""The access policy: who may do what to a session. The only place that decides it.

Anything a principal may not see answers NOT_FOUND, so that nobody learns that a
session of another entity, or of another person, exists.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from datetime import datetime

from .models import (
    ChatApp,
    GranteeKind,
    Principal,
    Role,
    Session,
    Share,
    ShareMode,
    TurnRole,
    UserType,
)


class Access(enum.IntEnum):
    NONE = 0
    READ = 1
    INTERACT = 2
    MANAGE = 3


_MODE_ACCESS = {ShareMode.READ: Access.READ, ShareMode.INTERACT: Access.INTERACT}


def manages_by_role(principal: Principal, session: Session) -> bool:
    """The owner, or an admin of the session's entity: no share can grant more."""
    return principal.entity_id == session.entity_id and (
        session.owner_id == principal.user_id or principal.has(Role.ADMIN)
    )


def shares_can_add(principal: Principal, session: Session) -> bool:
    """Whether some share could give `principal` more than its roles give on `session`:
    not for its managers (MANAGE), nor for the service of its entity (INTERACT, the most a
    share grants), whose reads then need no look at the shares."""
    if principal.entity_id != session.entity_id:
        return True
    return not (manages_by_role(principal, session) or principal.has(Role.SERVICE))


def access_to(
    principal: Principal,
    session: Session,
    chat_app: ChatApp | None,
    shares: Iterable[Share],
    now: datetime,
    opened_links: Collection[str] = (),
) -> Access:
    """The strongest access any rule grants `principal` on `session`.

    Roles never cross entities: an admin, auditor or service of one entity has no
    access to another entity's sessions except through a share made to them.
    `opened_links` are the ids of LINK shares this principal has opened with the token.
    """
    if is_expired(session, now):
        # Past its retention: gone for everyone, even before the cleanup removes it.
        return Access.NONE
    if manages_by_role(principal, session):
        return Access.MANAGE
    granted = Access.NONE
    if principal.entity_id == session.entity_id:
        if principal.has(Role.SERVICE):
            granted = Access.INTERACT
        elif principal.has(Role.ENTITY_ADMIN) or principal.has(Role.AUDITOR):
            granted = Access.READ
    for share in shares:
        if share.is_live(now) and _share_covers(share, principal, session, chat_app, opened_links):
            granted = max(granted, _MODE_ACCESS[share.mode])
    return granted


def is_expired(session: Session, now: datetime) -> bool:
    """Past the retention of its chat app (`expires_at`), the session is treated as gone."""
    return session.expires_at is not None and session.expires_at <= now


def _share_covers(
    share: Share,
    principal: Principal,
    session: Session,
    chat_app: ChatApp | None,
    opened_links: Collection[str],
) -> bool:
    if chat_app is None or not chat_app.settings.allow_sharing:
        # Turning sharing off for a chat app ends what was shared in it.
        return False
    same_entity = principal.entity_id == session.entity_id
    external_allowed = chat_app.settings.allow_external_sharing
    match share.grantee_kind:
        case GranteeKind.USER:
            return (
                same_entity
                and share.grantee_entity_id == principal.entity_id
                and share.grantee_user_id == principal.user_id
            )
        case GranteeKind.ENTITY:
            return same_entity and principal.user_type is UserType.INTERNAL
        case GranteeKind.EXTERNAL:
            return (
                not same_entity
                and external_allowed
                and share.grantee_entity_id == principal.entity_id
                and share.grantee_user_id == principal.user_id
            )
        case GranteeKind.LINK:
            return share.id in opened_links and (same_entity or external_allowed)


def may_open_link(principal: Principal, session: Session, chat_app: ChatApp | None) -> bool:
    """A link opens for the session's entity, and beyond it only where the chat app allows
    external sharing."""
    if principal.entity_id == session.entity_id:
        return True
    return chat_app is not None and chat_app.settings.allow_external_sharing


def may_share(principal: Principal, kind: GranteeKind) -> bool:
    """Which grants a session's manager may make. External users never pass a session on;
    grants that leave the entity (EXTERNAL, and LINK, which may) need a person who works
    there, not an agent back end."""
    if principal.user_type is not UserType.INTERNAL:
        return False
    if kind in (GranteeKind.EXTERNAL, GranteeKind.LINK):
        return principal.has(Role.USER) or principal.has(Role.ADMIN)
    return True


def can_define_templates(principal: Principal) -> bool:
    """Session templates of the entity (what every new session of it may start from: its
    system prompt, variables and opening turns) are set by its admins. Entity admins and
    auditors watch over the entity's sessions but change nothing in it."""
    return principal.has(Role.ADMIN)


def is_owner(principal: Principal, session: Session) -> bool:
    return principal.entity_id == session.entity_id and principal.user_id == session.owner_id


def sees_whole_entity(principal: Principal) -> bool:
    return any(principal.has(r) for r in (Role.AUDITOR, Role.ENTITY_ADMIN, Role.ADMIN))


def can_read(access: Access) -> bool:
    return access >= Access.READ


def can_interact(access: Access) -> bool:
    return access >= Access.INTERACT


def can_manage(access: Access) -> bool:
    return access >= Access.MANAGE


def may_append_role(
    principal: Principal,
    session: Session,
    access: Access,
    role: TurnRole,
    chat_app: ChatApp | None,
) -> bool:
    """Who may speak in a session as what. Whoever may interact writes USER turns.
    ASSISTANT, TOOL and SYSTEM turns reach the owner's agent as its own words, its tools'
    results and its instructions (`Session.context`), so they come from the owner (whose
    client may run the agent) and from the agent back end of the session's entity
    (`service`). Admins manage a session but are people, not the agent: like any other
    collaborator they write USER turns. A chat app may let the entity's own people who
    interact with a session append ASSISTANT and TOOL turns too
    (`agent_turns_from_collaborators`, for front ends that run the agent under the user's
    token); SYSTEM turns, and anyone from outside the entity, never."""
    if not can_interact(access):
        return False
    if role is TurnRole.USER or is_owner(principal, session):
        return True
    same_entity = principal.entity_id == session.entity_id
    if same_entity and principal.has(Role.SERVICE):
        return True
    return (
        role is not TurnRole.SYSTEM
        and same_entity
        and principal.user_type is UserType.INTERNAL
        and chat_app is not None
        and chat_app.settings.agent_turns_from_collaborators
    )


def may_act_on_behalf(principal: Principal, session: Session | None) -> bool:
    """Writing as another user (`onBehalfOf`) is for the agent back end, and only among the
    users of its own entity: a service reached by a share from another entity would
    otherwise write turns that read as the owner's."""
    return principal.has(Role.SERVICE) and (
        session is None or principal.entity_id == session.entity_id
    )


def can_verify(principal: Principal, session: Session, access: Access) -> bool:
    """Verification grades come from the owner, an admin or the agent back end of the
    session's entity: a service reached by a share from another entity interacts as a
    collaborator does, and does not grade the owner's agent."""
    if access >= Access.MANAGE:
        return True
    return (
        access >= Access.INTERACT
        and principal.has(Role.SERVICE)
        and principal.entity_id == session.entity_id
    )


def can_set_status(principal: Principal, session: Session, access: Access) -> bool:
    """Marking a session COMPLETED (or ACTIVE again) is for its owner or an admin, and for
    the agent back end (`service`) of the session's own entity."""
    if access >= Access.MANAGE:
        return True
    return principal.has(Role.SERVICE) and principal.entity_id == session.entity_id
