"""The retention job: sessions past their expires_at are removed for good, in batches.

Expired sessions are already invisible everywhere (the policy and every listing check
expiry on each request); this job reclaims their storage. Each batch is its own write
transaction (SQLite) or its own per-session units (MongoDB), so concurrent reads and
writes go through between batches. Every removal leaves a `session.expired` audit event
by the actor "system", written with the deletion exactly as `deleteSession` writes its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .clock import Clock, new_id
from .errors import Forbidden, InvalidInput
from .models import AuditEvent, Principal, Role, Session
from .ports import Store
from .redaction import redact_details
from .removals import ExpirySweep

SYSTEM_ACTOR = "system"
DEFAULT_BATCH = 500
MAX_BATCH = 10_000


@dataclass(slots=True)
class ChatAppRetention:
    chat_app_id: str
    removed: int = 0  # or, in a dry run, would be removed
    turns: int = 0


@dataclass(slots=True)
class RetentionReport:
    dry_run: bool
    chat_apps: list[ChatAppRetention] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return sum(a.removed for a in self.chat_apps)

    @property
    def turns(self) -> int:
        return sum(a.turns for a in self.chat_apps)


@dataclass(slots=True, frozen=True)
class BatchProgress:
    batch: int  # 1, 2, …
    sessions: int  # in this batch
    total: int  # so far


def expiry_audit(session: Session, clock: Clock) -> AuditEvent:
    return AuditEvent(
        id=new_id(),
        entity_id=session.entity_id,
        actor_id=SYSTEM_ACTOR,
        action="session.expired",
        target=f"session:{session.id}",
        at=clock.now(),
        details={"chatAppId": session.chat_app_id, "turnCount": session.turn_count},
    )


class RetentionService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def run(
        self,
        chat_app_id: str | None = None,
        dry_run: bool = False,
        batch: int = DEFAULT_BATCH,
        progress: Callable[[BatchProgress], None] | None = None,
        entity_id: str | None = None,
    ) -> RetentionReport:
        """Remove (or, with `dry_run`, count) every session expired now, of one chat app
        and one entity when given, batch after batch until none is left."""
        if not 1 <= batch <= MAX_BATCH:
            raise InvalidInput(f"batch must be between 1 and {MAX_BATCH}, got {batch}.")
        now = self._clock.now()
        per_app: dict[str, ChatAppRetention] = {}
        after: str | None = None
        number, total = 0, 0
        while True:
            sessions = await self._store.remove_expired(
                ExpirySweep(
                    now,
                    batch,
                    lambda s: expiry_audit(s, self._clock),
                    redact_details,
                    chat_app_id=chat_app_id,
                    entity_id=entity_id,
                    after_id=after if dry_run else None,
                    dry_run=dry_run,
                )
            )
            if not sessions:
                break
            number += 1
            total += len(sessions)
            for session in sessions:
                app = per_app.setdefault(session.chat_app_id, ChatAppRetention(session.chat_app_id))
                app.removed += 1
                app.turns += session.turn_count
            if progress is not None:
                progress(BatchProgress(number, len(sessions), total))
            if len(sessions) < batch:
                break
            after = sessions[-1].id
        return RetentionReport(dry_run, sorted(per_app.values(), key=lambda a: a.chat_app_id))

    async def run_for(
        self, principal: Principal, chat_app_id: str | None, dry_run: bool
    ) -> RetentionReport:
        """`runRetention`: an admin removes the expired sessions of their own entity only
        (the deployment-wide run is the server's job and the CLI's)."""
        if not principal.has(Role.ADMIN):
            raise Forbidden("Only an admin may run retention.")
        return await self.run(chat_app_id, dry_run=dry_run, entity_id=principal.entity_id)
