"""Sharing a session: grants to a user, the entity, an external collaborator or a link;
revocation, expiry, and what others shared with me."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from . import validation as check
from .access import SessionView
from .audit import audit_event
from .clock import new_id
from .collaborators import ActsOnSessions, SessionCollaborators
from .errors import Forbidden, InvalidInput, NotFound, SharingDisabled
from .events import AccessRevoked, ShareGranted
from .models import (
    AuditEvent,
    GranteeKind,
    GranteeScope,
    KeysetCursor,
    Principal,
    Share,
    ShareMode,
    UserType,
)
from .pagination import decode_keyset_cursor, page_size
from .policy import (
    can_manage,
    is_owner,
    may_open_link,
    may_share,
    sees_whole_entity,
)

SHARED_CURSOR = "w"
LINK_NOT_FOUND = "This share link is unknown, revoked or expired."


@dataclass(slots=True)
class ShareSession:
    session_id: str
    grantee_kind: GranteeKind
    mode: ShareMode = ShareMode.READ
    user_id: str | None = None
    entity_id: str | None = None
    expires_at: datetime | None = None


@dataclass(slots=True)
class NewShare:
    share: Share
    link_token: str | None
    """Given out once, when a LINK share is made; only its hash is stored."""


@dataclass(slots=True)
class SharedPage:
    items: list[tuple[SessionView, KeysetCursor]]
    has_next: bool


class AttemptCounter(Protocol):
    async def count(self, principal: Principal) -> None:
        """One more attempt by `principal`; RateLimited once there were too many."""


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SharingService(ActsOnSessions):
    def __init__(
        self, collaborators: SessionCollaborators, link_opens: AttemptCounter | None = None
    ) -> None:
        super().__init__(collaborators)
        self._link_opens = link_opens

    async def share(self, principal: Principal, command: ShareSession) -> NewShare:
        session, _ = await self._access.load_managed(principal, command.session_id)
        chat_app = self._chat_apps.get(session.chat_app_id)
        if chat_app is None or not chat_app.settings.allow_sharing:
            raise SharingDisabled(f"The chat app {session.chat_app_id!r} does not allow sharing.")
        kind = command.grantee_kind
        if kind is GranteeKind.EXTERNAL and not chat_app.settings.allow_external_sharing:
            raise SharingDisabled(
                f"The chat app {session.chat_app_id!r} does not allow sharing outside the entity."
            )
        if not may_share(principal, kind):
            raise Forbidden(f"Your role does not allow {kind.value.lower()} shares.")
        now = self._clock.now()
        if command.expires_at is not None and command.expires_at <= now:
            raise InvalidInput("The expiry must be in the future.")
        grantee_entity, grantee_user = self._grantee(command, session.entity_id, session.owner_id)
        token = secrets.token_urlsafe(32) if kind is GranteeKind.LINK else None
        share = Share(
            id=new_id(),
            session_id=session.id,
            entity_id=session.entity_id,
            grantee_kind=kind,
            grantee_entity_id=grantee_entity,
            grantee_user_id=grantee_user,
            mode=command.mode,
            created_by=principal.user_id,
            created_at=now,
            expires_at=command.expires_at,
            token_hash=hash_link_token(token) if token else None,
        )
        audit = audit_event(
            principal,
            session,
            "share.created",
            now,
            shareId=share.id,
            granteeKind=kind,
            granteeEntityId=grantee_entity,
            granteeUserId=grantee_user,
            mode=command.mode,
            expiresAt=command.expires_at,
        )
        stored = await self._store.create_share(share, audit)
        await self._broker.publish(ShareGranted(stored))
        return NewShare(stored, token)

    def _grantee(
        self, command: ShareSession, entity_id: str, owner_id: str
    ) -> tuple[str | None, str | None]:
        kind = command.grantee_kind
        user = command.user_id
        entity = command.entity_id
        if kind in (GranteeKind.ENTITY, GranteeKind.LINK):
            if user is not None or entity is not None:
                raise InvalidInput(f"A {kind.value} share names no user or entity.")
            return (entity_id, None) if kind is GranteeKind.ENTITY else (None, None)
        if user is None:
            raise InvalidInput(f"A {kind.value} share needs the grantee's userId.")
        check.identifier(user, self._limits, "grantee user id")
        if kind is GranteeKind.USER:
            if entity is not None and entity != entity_id:
                raise InvalidInput("A USER share stays in the entity; use EXTERNAL for others.")
            if user == owner_id:
                raise InvalidInput("The owner already has the session.")
            return entity_id, user
        if entity is None:
            raise InvalidInput("An EXTERNAL share needs the grantee's entityId.")
        check.identifier(entity, self._limits, "grantee entity id")
        if entity == entity_id:
            raise InvalidInput("The grantee is in the session's entity; use a USER share.")
        return entity, user

    async def revoke(self, principal: Principal, share_id: str) -> Share:
        check.identifier(share_id, self._limits, "share id")
        share = await self._store.get_share(share_id)
        if share is None:
            raise NotFound(f"Share {share_id!r} was not found.")
        try:
            session, _ = await self._access.load_managed(principal, share.session_id)
        except NotFound as exc:
            raise NotFound(f"Share {share_id!r} was not found.") from exc
        now = self._clock.now()
        audit = audit_event(
            principal,
            session,
            "share.revoked",
            now,
            shareId=share.id,
            granteeKind=share.grantee_kind,
        )
        revoked = await self._store.revoke_share(share.id, now, principal.user_id, audit)
        if revoked is None:
            raise NotFound(f"Share {share_id!r} was not found.")
        await self._broker.publish(AccessRevoked(revoked))
        return revoked

    async def open_link(self, principal: Principal, token: str) -> SessionView:
        if self._link_opens is not None:
            # Every try counts, a good token or not: guessing tokens is what this stops.
            await self._link_opens.count(principal)
        if not token or len(token) > 200:
            raise NotFound(LINK_NOT_FOUND)
        token_hash = hash_link_token(token)
        share = await self._store.share_by_token_hash(token_hash)
        now = self._clock.now()
        # The session is looked up whatever the share (an unknown token's hash names none):
        # an unknown, revoked or expired token costs what a link the caller may not open
        # costs, so that the answer's time does not tell a live link of another entity.
        session = await self._store.get_session(share.session_id if share else token_hash)
        if (
            share is None
            or share.grantee_kind is not GranteeKind.LINK
            or not share.is_live(now)
            or session is None
            or not may_open_link(principal, session, self._chat_apps.get(session.chat_app_id))
        ):
            raise NotFound(LINK_NOT_FOUND)
        opened = (
            None
            if is_owner(principal, session)
            else audit_event(principal, session, "share.opened", now, shareId=share.id)
        )
        await self._store.record_link_visit(
            share, principal.entity_id, principal.user_id, now, opened
        )
        return await self._access.view(principal, session.id)

    async def shares_of(self, principal: Principal, view: SessionView) -> list[Share]:
        """Every share of the session for its managers and for those who oversee its entity
        (who has access is theirs to know); the caller's own grants otherwise."""
        shares = await self._store.list_shares(view.session.id)
        overseer = principal.entity_id == view.session.entity_id and sees_whole_entity(principal)
        if can_manage(view.access) or overseer:
            return shares
        return [
            s
            for s in shares
            if s.grantee_user_id == principal.user_id and s.grantee_entity_id == principal.entity_id
        ]

    async def shared_with_me(
        self, principal: Principal, first: int | None, after: str | None
    ) -> SharedPage:
        limit = page_size(first, 30)
        cursor = decode_keyset_cursor(SHARED_CURSOR, after) if after else None
        scope = GranteeScope(
            principal.entity_id, principal.user_id, principal.user_type is UserType.INTERNAL
        )
        items: list[tuple[SessionView, KeysetCursor]] = []
        exhausted = False
        # The store found live grants; the policy has the last word (a chat app may have
        # turned sharing off since). Rows it drops must not shorten or end the page, so
        # scan on from the last row seen until the page is full.
        while len(items) <= limit and not exhausted:
            rows = await self._store.list_shared_with(scope, self._clock.now(), cursor, limit + 1)
            exhausted = len(rows) <= limit
            for session, shared_at in rows:
                cursor = KeysetCursor(shared_at, session.id)
                view = await self._access.find_quietly(principal, session)
                if view is not None:
                    items.append((view, cursor))
                    if len(items) > limit:
                        break
        return SharedPage(items[:limit], len(items) > limit)

    async def expire_due(self, limit: int = 500) -> list[Share]:
        """Record the end of shares whose expiry has passed and tell live followers."""
        now = self._clock.now()

        def expired(share: Share) -> AuditEvent:
            return AuditEvent(
                id=new_id(),
                entity_id=share.entity_id,
                actor_id="system",
                action="share.expired",
                target=f"session:{share.session_id}",
                at=now,
                details={"shareId": share.id, "expiresAt": share.expires_at.isoformat()}
                if share.expires_at
                else {"shareId": share.id},
            )

        shares = await self._store.expire_due_shares(now, limit, expired)
        for share in shares:
            await self._broker.publish(AccessRevoked(share))
        return shares
