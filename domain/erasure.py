"""Right to erasure: an admin removes everything personal of one person of their entity.

A person is a user id of one entity: the admin of acme erases acme's gina, never globex's
gina, not even what globex's gina wrote in acme's sessions through a share. What goes:
the sessions the person owns with all their turns (each deletion audited), and what they
left in other people's sessions (their turns emptied in place so that the others'
conversations keep their numbering, their feedback, pins, the shares granted to them, the
links they opened, their place among participants). That includes what they wrote as an
external grantee in sessions of other entities: their words are theirs wherever they are,
and their own entity is who answers for them. A title generated while their words were
in the session is made again without them. Audit events of their entity that they are the
actor of stay, their details cut down to ids, kinds and counts (their events elsewhere
hold no more than that: an external grantee reads, opens links, exports and writes). A
`user.erased` event records who asked and what was removed.

Work proceeds in batches, each its own transaction, and every step only looks for what is
still there: an erasure that stopped half way is finished by running it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .audit import deletion_event
from .clock import Clock, new_id
from .errors import Forbidden
from .events import SessionDeleted, SessionUpdated
from .models import (
    AuditEvent,
    ErasureCounts,
    OwnerScope,
    Principal,
    Role,
    SessionFilter,
)
from .ports import Broker, Store
from .redaction import redact_details
from .removals import ContributionErasure
from .title_service import TitleService
from .titles import opening_words
from .validation import Limits, identifier

ERASURE_BATCH = 200


@dataclass(slots=True, frozen=True)
class ErasureReport:
    user_id: str
    entity_id: str
    counts: ErasureCounts
    erased_at: datetime
    audit_event_id: str


class ErasureService:
    def __init__(
        self,
        store: Store,
        broker: Broker,
        clock: Clock,
        limits: Limits,
        batch: int = ERASURE_BATCH,
        titles: TitleService | None = None,
    ) -> None:
        self._store = store
        self._broker = broker
        self._clock = clock
        self._limits = limits
        self._batch = batch
        self._titles = titles

    async def erase(self, principal: Principal, user_id: str) -> ErasureReport:
        """`eraseUserData`: an admin erases a person of their own entity (roles never
        reach across entities, so neither does the choice of whom to erase)."""
        if not principal.has(Role.ADMIN):
            raise Forbidden("Only an admin may erase a user's data.")
        user_id = identifier(user_id, self._limits, "user id")
        entity_id = principal.entity_id
        counts = ErasureCounts()
        await self._erase_owned_sessions(principal, entity_id, user_id, counts)
        at = self._clock.now()
        retitled: list[str] = []
        while True:
            batch, ids = await self._store.erase_contributions(
                ContributionErasure(
                    entity_id, user_id, at, self._batch, redact_details, opening_words
                )
            )
            if batch.is_empty():
                break
            counts.add(batch)
            retitled += ids
        await self._title_again(retitled)
        event = AuditEvent(
            id=new_id(),
            entity_id=entity_id,
            actor_id=principal.user_id,
            action="user.erased",
            target=f"user:{user_id}",
            at=self._clock.now(),
            details=counts.as_dict(),
        )
        await self._store.append_audit(event)
        return ErasureReport(user_id, entity_id, counts, event.at, event.id)

    async def _erase_owned_sessions(
        self, principal: Principal, entity_id: str, user_id: str, counts: ErasureCounts
    ) -> None:
        every_session = SessionFilter(archived=None)
        while True:
            owned = await self._store.list_sessions(
                OwnerScope(entity_id, user_id), every_session, None, self._batch
            )
            if not owned:
                return
            now = self._clock.now()
            live_shares = {
                s.id: tuple(x for x in await self._store.list_shares(s.id) if x.is_live(now))
                for s in owned
            }
            erased, redacted = await self._store.erase_sessions(
                [s.id for s in owned],
                lambda s: deletion_event(principal, s, self._clock.now(), reason="erasure"),
                redact_details,
            )
            counts.audit_events += redacted
            for session in erased:
                counts.sessions += 1
                counts.session_turns += session.turn_count
                await self._broker.publish(
                    SessionDeleted(
                        session.id, session.entity_id, session.owner_id, live_shares[session.id]
                    )
                )

    async def _title_again(self, session_ids: list[str]) -> None:
        """Sessions whose title the erasure took back: their followers see the stand-in,
        and the title worker makes a new title from the turns left."""
        for session_id in session_ids:
            session = await self._store.get_session(session_id)
            if session is None:
                continue
            await self._broker.publish(SessionUpdated(session))
            if self._titles is not None:
                self._titles.title_again(session)
