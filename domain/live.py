"""What live followers of sessions and sidebars may be told, decided by the one access
policy: the realtime hub asks here for every member, and holds no rule of its own."""

from __future__ import annotations

from dataclasses import replace

from .access import SessionAccess
from .models import Principal, Session, Share, UserType
from .policy import can_read, is_owner


class LiveAccess:
    def __init__(self, access: SessionAccess) -> None:
        self._access = access

    async def reads(self, principal: Principal, session: Session, shares: list[Share]) -> bool:
        """`principal` may read `session` now, given its `shares` as they stand."""
        return can_read(await self._access.access_of(principal, session, shares))

    @staticmethod
    def hears_entity_wide(principal: Principal) -> bool:
        """Events meant for a whole entity (a session shared with it) reach its own
        people only: an external user of the entity is no member of it."""
        return principal.user_type is UserType.INTERNAL

    @staticmethod
    def created_for(principal: Principal, entity_id: str, owner_id: str) -> bool:
        """A new session shows in its owner's sidebar, and in nobody else's."""
        return principal.entity_id == entity_id and principal.user_id == owner_id

    async def sees_update(
        self, principal: Principal, session: Session, shares: list[Share], *, new_share: bool
    ) -> bool:
        """A sidebar shows a change of `session` (or that it was shared) to whoever reads
        it; an owner is not told that their own session was shared."""
        if new_share and is_owner(principal, session):
            return False
        return await self.reads(principal, session, shares)

    async def lost_by_revocation(
        self, principal: Principal, session: Session, shares: list[Share], share_id: str
    ) -> bool:
        """The revocation (or expiry) of `share_id` is what ended `principal`'s access: it
        reads the session no longer, and would with that share still live."""
        if is_owner(principal, session) or await self.reads(principal, session, shares):
            return False
        revived = [
            replace(s, revoked_at=None, expires_at=None) if s.id == share_id else s for s in shares
        ]
        return await self.reads(principal, session, revived)
