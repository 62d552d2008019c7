"""What a notification means to the groups of its channel: the reads it needs, done once
for all of them (`Lookups`), and the change a sidebar shows for it (`sidebar_change`),
decided by the domain's live access rules."""

from __future__ import annotations

from typing import Any

from ..domain.live import LiveAccess
from ..domain.models import Principal, Session, Share, Turn
from ..domain.ports import Store
from .feeds import SidebarChange, SidebarKind
from .notifications import Kind, Notification


class Lookups:
    """Reads shared by every group of one channel while one notification is handled."""

    def __init__(self, store: Store, note: Notification | None, session_id: str | None) -> None:
        self._store = store
        self._session_id = session_id
        self._note = note
        self._session: Any = ...
        self._shares: list[Share] | None = None
        self._turns: dict[int, list[Turn]] = {}

    async def session(self) -> Session | None:
        if self._session is ...:
            self._session = await self._store.get_session(self._session_id or "")
        return self._session

    async def shares(self) -> list[Share]:
        if self._shares is None:
            self._shares = await self._store.list_shares(self._session_id or "")
        return self._shares

    async def turns_after(self, cursor: int, limit: int) -> list[Turn]:
        note = self._note
        if (
            note is not None
            and note.kind is Kind.TURN_ADDED
            and note.turn is not None
            and note.turn.seq == cursor + 1
        ):
            # The publisher's own followers: the turn came with the notification. Any
            # turn after it has a notification of its own.
            return [note.turn]
        if cursor not in self._turns:
            self._turns[cursor] = await self._store.list_turns(
                self._session_id or "", after_seq=cursor, limit=limit
            )
        return self._turns[cursor]


async def sidebar_change(
    live: LiveAccess, principal: Principal, note: Notification, lookups: Lookups
) -> SidebarChange | None:
    """What `principal`'s sidebar shows of `note`, if anything."""
    sid = note.session_id
    match note.kind:
        case Kind.SESSION_DELETED:
            return SidebarChange(SidebarKind.DELETED, sid)
        case Kind.SESSION_CREATED:
            created_for = live.created_for(principal, note.entity_id or "", note.owner_id or "")
            session = await lookups.session() if created_for else None
            return SidebarChange(SidebarKind.CREATED, sid, session) if session else None
        case Kind.SESSION_UPDATED | Kind.SHARE_GRANTED:
            session = await lookups.session()
            if session is None:
                return None
            new_share = note.kind is Kind.SHARE_GRANTED
            shares = await lookups.shares()
            if not await live.sees_update(principal, session, shares, new_share=new_share):
                return None
            kind = SidebarKind.UPDATED if note.kind is Kind.SESSION_UPDATED else SidebarKind.SHARED
            return SidebarChange(kind, sid, session)
        case Kind.ACCESS_REVOKED:
            session = await lookups.session()
            if session is None:
                return None
            shares = await lookups.shares()
            lost = await live.lost_by_revocation(principal, session, shares, note.share_id or "")
            return SidebarChange(SidebarKind.UNSHARED, sid) if lost else None
    return None
