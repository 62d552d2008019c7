"""Loading a session as one principal may see it: the access the policy gives them, or
NotFound whatever the cause, at the same cost for a missing id as for a foreign one; and
`SessionView`, a session as that principal sees it."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import validation as check
from .audit import audit_event
from .chat_apps import ChatApps
from .clock import Clock
from .errors import Forbidden, NotFound, session_not_found, turn_not_found
from .models import ChatApp, GranteeKind, Principal, Session, Share, Turn
from .people import session_seen_by
from .policy import Access, access_to, can_manage, can_read, is_owner, shares_can_add
from .ports import Store


@dataclass(slots=True)
class SessionView:
    """A session as one principal sees it."""

    session: Session
    access: Access
    chat_app: ChatApp | None
    pinned: bool | None
    """None until asked for: a single session's pin is looked up (`is_pinned`) only by a
    caller who reads it, which most reads of one session (its turns, a new message) do not."""
    viewer: Principal | None = None
    """Set when a listing found the session: reading its turns or context through this
    view is then a read of the session, audited once for anyone but the owner."""
    audience: str = field(kw_only=True)
    """The entity of whom the view is for: the session, its turns and its context show
    people as that entity may see them (people.py)."""

    def __post_init__(self) -> None:
        self.session = session_seen_by(self.audience, self.session)


class SessionAccess:
    def __init__(
        self, store: Store, chat_apps: ChatApps, clock: Clock, limits: check.Limits
    ) -> None:
        self._store = store
        self._chat_apps = chat_apps
        self._clock = clock
        self._limits = limits

    async def view(self, principal: Principal, session_id: str) -> SessionView:
        """The session if `principal` may read it; NotFound otherwise, whatever the cause.
        A read by anyone but the owner goes into the audit trail."""
        session, access = await self.load_readable(principal, session_id)
        if not is_owner(principal, session):
            await self._store.append_audit(
                audit_event(principal, session, "session.read", self._clock.now(), access=access)
            )
        return self.view_of(principal, session, access)

    async def find_quietly(self, principal: Principal, session: Session) -> SessionView | None:
        """The caller's view of a session found by a listing; reading its turns or context
        is audited then, not the listing itself."""
        access = await self.listed_access(principal, session)
        if not can_read(access):
            return None
        chat_app = self._chat_apps.get(session.chat_app_id)
        return SessionView(
            session, access, chat_app, None, viewer=principal, audience=principal.entity_id
        )

    async def find(self, principal: Principal, session_id: str) -> SessionView | None:
        try:
            return await self.view(principal, session_id)
        except NotFound:
            return None

    async def access_of(
        self, principal: Principal, session: Session, shares: list[Share] | None = None
    ) -> Access:
        """What `principal` may do with `session` now; `shares` when the caller already
        holds the session's shares (live followers re-checked after a revocation)."""
        return await self._access(principal, session, shares)

    async def _access(
        self, principal: Principal, session: Session, shares: list[Share] | None = None
    ) -> Access:
        opened: set[str] = set()
        if shares is None:
            if shares_can_add(principal, session):
                shares, opened = await self._grants(principal, session.id)
            else:
                shares = []
        elif any(s.grantee_kind is GranteeKind.LINK for s in shares):
            opened = await self._store.opened_link_ids(
                session.id, principal.entity_id, principal.user_id
            )
        return access_to(
            principal,
            session,
            self._chat_apps.get(session.chat_app_id),
            shares,
            self._clock.now(),
            opened,
        )

    async def listed_access(self, principal: Principal, session: Session) -> Access:
        """Access to a session a listing found in the caller's own scope (their sessions,
        their entity's for those who oversee it, those shared with them, their pins): its
        existence is no secret to them, so it is spared the look-ups that make a named id
        cost what a missing one does (`_grants`), and the links they opened are read only
        where the session has a LINK share."""
        shares = (
            await self._store.list_shares(session.id) if shares_can_add(principal, session) else []
        )
        return await self._access(principal, session, shares)

    async def _grants(self, principal: Principal, session_id: str) -> tuple[list[Share], set[str]]:
        """The session's shares and the links `principal` opened on it. Both are read for
        every id a principal asks about without a role that settles it, whether the session
        exists or not: an id of another entity costs what a missing id costs, so that its
        answer time does not tell that it exists."""
        shares = await self._store.list_shares(session_id)
        opened = await self._store.opened_link_ids(
            session_id, principal.entity_id, principal.user_id
        )
        return shares, opened

    async def load_readable(self, principal: Principal, session_id: str) -> tuple[Session, Access]:
        """The session and the caller's access to it; NotFound unless they may read it."""
        check.identifier(session_id, self._limits, "session id")
        session = await self._store.get_session(session_id)
        if session is None:
            await self._grants(principal, session_id)
            raise session_not_found(session_id)
        access = await self._access(principal, session)
        if not can_read(access):
            raise session_not_found(session_id)
        return session, access

    async def load_managed(self, principal: Principal, session_id: str) -> tuple[Session, Access]:
        session, access = await self.load_readable(principal, session_id)
        if not can_manage(access):
            raise Forbidden("Only the session's owner or an admin may do that.")
        return session, access

    async def load_turn(self, principal: Principal, turn_id: str) -> tuple[Turn, Session, Access]:
        check.identifier(turn_id, self._limits, "turn id")
        turn = await self._store.get_turn(turn_id)
        try:
            # A missing turn's own id stands for its session: no session has it, and the
            # look-ups are those of a turn in a session the caller may not see.
            session, access = await self.load_readable(
                principal, turn.session_id if turn else turn_id
            )
        except NotFound as exc:
            raise turn_not_found(turn_id) from exc
        if turn is None:
            raise turn_not_found(turn_id)
        return turn, session, access

    def view_of(self, principal: Principal, session: Session, access: Access) -> SessionView:
        chat_app = self._chat_apps.get(session.chat_app_id)
        return SessionView(session, access, chat_app, None, audience=principal.entity_id)

    async def record_listed_read(self, view: SessionView) -> None:
        viewer = view.viewer
        if viewer is None:
            return
        view.viewer = None
        if not is_owner(viewer, view.session):
            await self._store.append_audit(
                audit_event(
                    viewer, view.session, "session.read", self._clock.now(), access=view.access
                )
            )
