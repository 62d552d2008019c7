"""The embedded SQLite store: the Store port over one file in WAL mode, by delegation.

Each method runs the function of a record module (sessions, turns, shares ...) that does
its work, on a reader or in one write transaction on the writer (connections.py); the
background work and the readiness check are the upkeep's (upkeep.py), search is the
search package's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ...domain.languages import NO_CONFIGURED_LANGUAGES, Languages
from ...domain.models import (
    JSON,
    AuditEvent,
    AuditFilter,
    EntityTemplate,
    ErasureCounts,
    Feedback,
    GranteeScope,
    KeysetCursor,
    NewTurn,
    OwnerScope,
    Pin,
    Session,
    SessionCursor,
    SessionFilter,
    SessionStatus,
    Share,
    TitleSource,
    Turn,
    TurnText,
    Verification,
)
from ...domain.query import SearchRequest, SessionHit
from ...domain.removals import ContributionErasure, ExpirySweep
from . import (
    audit,
    driver,
    erasure,
    migrate,
    pins,
    retention,
    sessions,
    shares,
    templates,
    turns,
    upkeep,
)
from .codec import DAY_US
from .connections import Connections, in_transaction, opening_errors
from .search import Searcher, index
from .search.tuning import SearchTuning
from .upkeep import Upkeep

# How often the background connection copies the WAL into the database file.
CHECKPOINT_SECONDS = 0.5
DEFAULT_SEARCH_TUNING = SearchTuning()


class SqliteStore:
    def __init__(
        self,
        path: str,
        *,
        readers: int = 4,
        busy_timeout_ms: int = 5000,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
        search_tuning: SearchTuning = DEFAULT_SEARCH_TUNING,
        languages: Languages = NO_CONFIGURED_LANGUAGES,
    ) -> None:
        self.connections = Connections(path, readers=readers, busy_timeout_ms=busy_timeout_ms)
        """The file's connections (tests and benchmarks run functions on them, or trace them)."""
        self._upkeep = Upkeep(self.connections, checkpoint_seconds=checkpoint_seconds)
        self._searcher = Searcher(self.connections, search_tuning)
        # Every appended turn widens the time of its block in turn_time_blocks.
        self._time_block_shift = search_tuning.time_block_shift
        # What turns and titles are stemmed in, per chat app (the rest: detected).
        self._languages = languages

    async def open(self) -> None:
        """Connect, bring the schema up to date and start the background work; a store
        that fails to open (a migration that cannot run, a file it may not write) leaves
        no connection behind."""
        try:
            with opening_errors(self.connections.path):
                await self.connections.open(_prepare)
                await self._upkeep.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        await self._upkeep.stop()
        await self.connections.close()

    async def check_ready(self) -> None:
        await self._upkeep.check_ready()

    # Sessions

    async def create_session(
        self, session: Session, first_turn: NewTurn | None, max_turns: int
    ) -> tuple[Session, Turn | None]:
        return await self.connections.write(
            _create_session,
            session,
            first_turn,
            max_turns,
            self._time_block_shift,
            self._languages,
        )

    async def get_session(self, session_id: str) -> Session | None:
        return await self.connections.read(sessions.get_session, session_id)

    async def rename_session(
        self,
        session_id: str,
        title: str,
        source: TitleSource,
        at: datetime,
        *,
        if_title_version: int | None = None,
    ) -> Session | None:
        return await self.connections.write(
            sessions.rename_session,
            session_id,
            title,
            source,
            at,
            if_title_version,
            self._languages,
        )

    async def set_archived(
        self, session_id: str, archived_at: datetime | None, at: datetime
    ) -> Session | None:
        return await self.connections.write(sessions.set_archived, session_id, archived_at, at)

    async def delete_session(
        self, session_id: str, audit: AuditEvent, redact: Callable[[JSON], JSON]
    ) -> bool:
        deleted = await self.connections.write(
            sessions.delete_session, session_id, audit, redact, purge=True
        )
        return deleted is not None

    async def set_tags(
        self, session_id: str, tags: list[str], at: datetime, audit: AuditEvent | None = None
    ) -> Session | None:
        return await self.connections.write(sessions.set_tags, session_id, tags, at, audit)

    async def set_status(
        self, session_id: str, status: SessionStatus, at: datetime
    ) -> Session | None:
        return await self.connections.write(sessions.set_status, session_id, status, at)

    async def tag_counts(
        self, scope: OwnerScope, now: datetime, limit: int
    ) -> list[tuple[str, int]]:
        return await self.connections.read(sessions.tag_counts, scope, now, limit)

    async def list_sessions(
        self,
        scope: OwnerScope,
        session_filter: SessionFilter,
        after: SessionCursor | None,
        limit: int,
    ) -> list[Session]:
        return await self.connections.read(
            sessions.list_sessions, scope, session_filter, after, limit
        )

    # Retention and erasure

    async def apply_retention(self, chat_app_id: str, days: int, batch: int = 2000) -> int:
        # One batch per write transaction: the writer lock is released between batches.
        after, total = 0, 0
        while True:
            last, count = await self.connections.write(
                retention.apply_retention_batch, chat_app_id, days * DAY_US, after, batch
            )
            total += count
            if count < batch:
                return total
            after = last

    async def remove_expired(self, sweep: ExpirySweep) -> list[Session]:
        # One batch is one write transaction; the caller loops, releasing the writer.
        if sweep.batch <= 0:
            return []
        if sweep.dry_run:
            return await self.connections.read(retention.expired_sessions, sweep)
        return await self.connections.write(retention.remove_expired, sweep, purge=True)

    async def erase_sessions(
        self,
        session_ids: list[str],
        audit_for: Callable[[Session], AuditEvent],
        redact: Callable[[JSON], JSON],
    ) -> tuple[list[Session], int]:
        return await self.connections.write(
            erasure.erase_sessions, session_ids, audit_for, redact, purge=True
        )

    async def erase_contributions(
        self, request: ContributionErasure
    ) -> tuple[ErasureCounts, list[str]]:
        return await self.connections.write(erasure.erase_contributions, request, purge=True)

    # Turns

    async def append_turn(
        self, turn: NewTurn, max_turns: int, retention_days: int | None = None
    ) -> tuple[Turn, Session]:
        return await self.connections.write(
            turns.append_turn,
            turn,
            max_turns,
            retention_days,
            self._time_block_shift,
            self._languages,
        )

    async def get_turn(self, turn_id: str) -> Turn | None:
        return await self.connections.read(turns.get_turn, turn_id)

    async def list_turns(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int,
        newest_first: bool = False,
    ) -> list[Turn]:
        return await self.connections.read(
            turns.list_turns, session_id, after_seq, before_seq, limit, newest_first
        )

    async def conversation(
        self, session_id: str, *, limit: int, newest_first: bool = False, chars: int
    ) -> list[TurnText]:
        return await self.connections.read(
            turns.conversation, session_id, limit, newest_first, chars
        )

    async def set_verification(self, turn_id: str, verification: Verification) -> Turn | None:
        return await self.connections.write(turns.set_verification, turn_id, verification)

    async def add_feedback(self, turn_id: str, feedback: Feedback) -> Turn | None:
        return await self.connections.write(turns.add_feedback, turn_id, feedback)

    # Search

    async def search(self, request: SearchRequest) -> list[SessionHit]:
        return await self._searcher.search(request)

    # Pins

    async def pin(self, entity_id: str, pin: Pin) -> None:
        await self.connections.write(pins.pin, entity_id, pin)

    async def unpin(self, entity_id: str, user_id: str, session_id: str) -> None:
        await self.connections.write(pins.unpin, entity_id, user_id, session_id)

    async def pinned_session_ids(
        self, entity_id: str, user_id: str, session_ids: list[str]
    ) -> set[str]:
        if not session_ids:
            return set()
        return await self.connections.read(pins.pinned_session_ids, entity_id, user_id, session_ids)

    async def list_pinned(self, entity_id: str, user_id: str, limit: int) -> list[Session]:
        return await self.connections.read(pins.list_pinned, entity_id, user_id, limit)

    # Shares

    async def create_share(self, share: Share, audit: AuditEvent) -> Share:
        return await self.connections.write(shares.create_share, share, audit)

    async def get_share(self, share_id: str) -> Share | None:
        return await self.connections.read(shares.get_share, "id", share_id)

    async def share_by_token_hash(self, token_hash: str) -> Share | None:
        return await self.connections.read(shares.get_share, "token_hash", token_hash)

    async def list_shares(self, session_id: str) -> list[Share]:
        return await self.connections.read(shares.list_shares, session_id)

    async def revoke_share(
        self, share_id: str, at: datetime, by: str, audit: AuditEvent
    ) -> Share | None:
        return await self.connections.write(shares.revoke_share, share_id, at, by, audit)

    async def record_link_visit(
        self, share: Share, entity_id: str, user_id: str, at: datetime, audit: AuditEvent | None
    ) -> None:
        await self.connections.write(shares.record_link_visit, share, entity_id, user_id, at, audit)

    async def opened_link_ids(self, session_id: str, entity_id: str, user_id: str) -> set[str]:
        return await self.connections.read(shares.opened_link_ids, session_id, entity_id, user_id)

    async def list_shared_with(
        self, scope: GranteeScope, now: datetime, after: KeysetCursor | None, limit: int
    ) -> list[tuple[Session, datetime]]:
        return await self.connections.read(shares.list_shared_with, scope, now, after, limit)

    async def expire_due_shares(
        self, now: datetime, limit: int, audit_for: Callable[[Share], AuditEvent]
    ) -> list[Share]:
        return await self.connections.write(shares.expire_due_shares, now, limit, audit_for)

    # Audit

    async def append_audit(self, event: AuditEvent) -> None:
        await self.connections.write(audit.insert_audit, event)

    async def list_audit(
        self,
        entity_id: str,
        audit_filter: AuditFilter,
        after: KeysetCursor | None,
        limit: int,
    ) -> list[AuditEvent]:
        return await self.connections.read(audit.list_audit, entity_id, audit_filter, after, limit)

    # Session templates defined by admins

    async def create_template(self, template: EntityTemplate, audit: AuditEvent) -> None:
        await self.connections.write(templates.create_template, template, audit)

    async def get_template(self, entity_id: str, template_id: str) -> EntityTemplate | None:
        return await self.connections.read(templates.get_template, entity_id, template_id)

    async def list_templates(self, entity_id: str, chat_app_id: str) -> list[EntityTemplate]:
        return await self.connections.read(templates.list_templates, entity_id, chat_app_id)

    async def update_template(self, template: EntityTemplate, audit: AuditEvent) -> bool:
        return await self.connections.write(templates.update_template, template, audit)

    async def delete_template(self, entity_id: str, template_id: str, audit: AuditEvent) -> bool:
        return await self.connections.write(
            templates.delete_template, entity_id, template_id, audit
        )


# Below, what runs inside the writer's thread, on the plain SQLite connection.


def _prepare(conn: driver.Connection) -> None:
    """What the file needs before the store serves: the functions its migrations call, the
    migrations, and a write."""
    index.register_functions(conn)
    migrate.apply(conn, migrate.scripts())
    # SQLite opens a file it may not write read-only, without a word, and a database
    # already migrated gives it no write to fail on: this one does.
    in_transaction(conn, upkeep.write_probe)


def _create_session(
    conn: driver.Connection,
    session: Session,
    first_turn: NewTurn | None,
    max_turns: int,
    time_block_shift: int,
    languages: Languages,
) -> tuple[Session, Turn | None]:
    sessions.insert_session(conn, session, languages)
    if first_turn is None:
        return session, None
    turn, stored = turns.append_turn(conn, first_turn, max_turns, None, time_block_shift, languages)
    return stored, turn
