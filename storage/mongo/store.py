"""MongoStore: the Store port on MongoDB, put together from the parts of this package.

Each part holds one concept and takes the shared connection (and the parts it builds on):

    connection.py  the client, the collections, transactions, atomic units of work
    indexes.py     collections and indexes, created at `open`
    upgrades.py    rewrites of documents written by earlier versions, run at `open`
    recovery.py    finishing interrupted step-by-step writes, at `open` and before sweeps
    sessions.py    sessions, their deletion included
    turns.py       turns, with gapless sequence numbers
    pins.py        pins
    shares.py      shares and link visits
    audit.py       the audit trail and the outboxes that feed it
    templates.py   session templates
    erasure.py     the right to erasure
    retention.py   expiry and the removal of expired sessions
    search.py      search on stored stems; atlas.py, through Atlas Search
    codec.py       documents to domain objects and back; filters.py, shared conditions
    errors.py      driver errors into domain errors, applied to every method here

What the tests run it against, and what that cannot show
---------------------------------------------------------
Every test run drives this store through the real Motor client, over the wire, against
mongoeco 4.11 (tests/support/mongo_wire.py): a pure-Python, in-memory server of MongoDB's
wire protocol. mongoeco is not MongoDB: a pass there shows the store's commands, cursors,
indexes and error handling as mongoeco answers them. Where its answers differ from
MongoDB's, the query is written to mean the same on both (shares.py: the expiry of
shares). mongoeco answers `hello` as a standalone, so every run takes the
step-by-step path; the transactional path runs only against a replica set (the contract
suite with MONGODB_URL). Concurrent appends interleave their round trips as against any
server, but how MongoDB's own storage engine orders concurrent writes is not shown. The
Atlas path (atlas.py) is tested as a pipeline and runs only where MONGODB_ATLAS_SEARCH
says a server has Atlas Search. A stopped or frozen server and refused commands are tested
(tests/storage/test_mongo_errors.py); durability, write concerns and elections are not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, final

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
from ...domain.ports import Store
from ...domain.query import SearchRequest, SessionHit
from ...domain.removals import ContributionErasure, ExpirySweep
from . import atlas, driver, indexes, search, upgrades
from .audit import AuditTrail
from .connection import Connection
from .erasure import Erasure
from .errors import translated
from .filters import VISIBLE
from .pins import PinRecords
from .recovery import Recovery
from .retention import Retention
from .sessions import SessionRecords
from .shares import ShareRecords
from .templates import TemplateRecords
from .turns import TurnRecords

SearchMode = Literal["stems", "atlas"]
SEARCH_MODES: tuple[SearchMode, ...] = ("stems", "atlas")


# Subclassing the port has the type checker hold every method to its signature there, and
# @final makes a method missing from this class an error too.
@final
class MongoStore(Store):
    """The Store protocol on MongoDB. `client` is a Motor client (or a test double with
    the same surface); `redact` the rule that cuts the audit details of a deleted session
    down (the one the domain passes to every deletion: recovery finishes deletions that
    were interrupted, with no domain call to pass it); `transactions` None means: ask the
    server at `open`. `search_mode` chooses how `search` runs: "stems" on the stored stems
    (search.py, any MongoDB), or "atlas" through Atlas Search `$search` (atlas.py; needs
    the indexes of atlas_search_index.json, applied with `sessionhub mongo
    apply-search-index`). `create_indexes` False: `open` creates no collection or index,
    the operator has built them. Every method hands its work to the part that holds it."""

    def __init__(
        self,
        client: Any,
        database: str,
        *,
        redact: Callable[[JSON], JSON],
        transactions: bool | None = None,
        search_mode: SearchMode = "stems",
        create_indexes: bool = True,
        languages: Languages = NO_CONFIGURED_LANGUAGES,
    ) -> None:
        if search_mode not in SEARCH_MODES:
            raise ValueError(f"search_mode must be one of {SEARCH_MODES}, not {search_mode!r}")
        self._connection = connection = Connection(
            client, database, transactions=transactions, languages=languages
        )
        self._search_mode: SearchMode = search_mode
        self._create_indexes = create_indexes
        self._audit = AuditTrail(connection)
        self._turns = TurnRecords(connection)
        self._sessions = SessionRecords(connection, self._turns, self._audit)
        self._pins = PinRecords(connection, self._sessions)
        self._shares = ShareRecords(connection, self._sessions, self._audit)
        self._templates = TemplateRecords(connection, self._audit)
        self._erasure = Erasure(connection, self._sessions, self._audit)
        self._retention = Retention(connection, self._sessions)
        self._recovery = Recovery(connection, self._sessions, self._audit, redact)

    @classmethod
    def from_url(
        cls,
        url: str,
        database: str,
        *,
        redact: Callable[[JSON], JSON],
        server_selection_timeout_ms: int | None = None,
        search_mode: SearchMode = "stems",
        transactions: bool | None = None,
        create_indexes: bool = True,
        languages: Languages = NO_CONFIGURED_LANGUAGES,
    ) -> MongoStore:
        client = driver.connect(url, server_selection_timeout_ms=server_selection_timeout_ms)
        return cls(
            client,
            database,
            redact=redact,
            search_mode=search_mode,
            transactions=transactions,
            create_indexes=create_indexes,
            languages=languages,
        )

    @property
    def search_mode(self) -> SearchMode:
        return self._search_mode

    @property
    def transactions(self) -> bool:
        """Whether multi-document writes run in transactions (known after `open`)."""
        return self._connection.transactions

    # Lifecycle

    @translated
    async def open(self) -> None:
        await self._connection.learn_transactions()
        if self._create_indexes:
            await indexes.ensure(self._connection.database)
        await self._recovery.recover(datetime.now(UTC))
        await upgrades.run_pending(self._connection.database)

    async def close(self) -> None:
        self._connection.close()

    @translated
    async def check_ready(self) -> None:
        """The primary answers (a command goes to the primary, where writes go). A full
        disk or a lost volume is mongod's to refuse: it stops rather than take writes."""
        await self._connection.ping()

    # Sessions

    @translated
    async def create_session(
        self, session: Session, first_turn: NewTurn | None, max_turns: int
    ) -> tuple[Session, Turn | None]:
        return await self._sessions.create_session(session, first_turn, max_turns)

    @translated
    async def get_session(self, session_id: str) -> Session | None:
        return await self._sessions.get_session(session_id)

    @translated
    async def rename_session(
        self,
        session_id: str,
        title: str,
        source: TitleSource,
        at: datetime,
        *,
        if_title_version: int | None = None,
    ) -> Session | None:
        return await self._sessions.rename_session(
            session_id, title, source, at, if_title_version=if_title_version
        )

    @translated
    async def set_archived(
        self, session_id: str, archived_at: datetime | None, at: datetime
    ) -> Session | None:
        return await self._sessions.set_archived(session_id, archived_at, at)

    @translated
    async def set_tags(
        self, session_id: str, tags: list[str], at: datetime, audit: AuditEvent | None = None
    ) -> Session | None:
        return await self._sessions.set_tags(session_id, tags, at, audit)

    @translated
    async def set_status(
        self, session_id: str, status: SessionStatus, at: datetime
    ) -> Session | None:
        return await self._sessions.set_status(session_id, status, at)

    @translated
    async def apply_retention(self, chat_app_id: str, days: int) -> int:
        return await self._retention.apply_retention(chat_app_id, days)

    @translated
    async def remove_expired(self, sweep: ExpirySweep) -> list[Session]:
        return await self._retention.remove_expired(sweep)

    @translated
    async def erase_sessions(
        self,
        session_ids: list[str],
        audit_for: Callable[[Session], AuditEvent],
        redact: Callable[[JSON], JSON],
    ) -> tuple[list[Session], int]:
        return await self._erasure.erase_sessions(session_ids, audit_for, redact)

    @translated
    async def erase_contributions(
        self, request: ContributionErasure
    ) -> tuple[ErasureCounts, list[str]]:
        return await self._erasure.erase_contributions(request)

    @translated
    async def tag_counts(
        self, scope: OwnerScope, now: datetime, limit: int
    ) -> list[tuple[str, int]]:
        return await self._sessions.tag_counts(scope, now, limit)

    @translated
    async def delete_session(
        self, session_id: str, audit: AuditEvent, redact: Callable[[JSON], JSON]
    ) -> bool:
        return await self._sessions.delete_session(session_id, audit, redact)

    @translated
    async def list_sessions(
        self,
        scope: OwnerScope,
        session_filter: SessionFilter,
        after: SessionCursor | None,
        limit: int,
    ) -> list[Session]:
        return await self._sessions.list_sessions(scope, session_filter, after, limit)

    # Turns

    @translated
    async def append_turn(
        self, turn: NewTurn, max_turns: int, retention_days: int | None = None
    ) -> tuple[Turn, Session]:
        return await self._turns.append_turn(turn, max_turns, retention_days)

    @translated
    async def get_turn(self, turn_id: str) -> Turn | None:
        return await self._turns.get_turn(turn_id)

    @translated
    async def list_turns(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int,
        newest_first: bool = False,
    ) -> list[Turn]:
        return await self._turns.list_turns(
            session_id,
            after_seq=after_seq,
            before_seq=before_seq,
            limit=limit,
            newest_first=newest_first,
        )

    @translated
    async def conversation(
        self, session_id: str, *, limit: int, newest_first: bool = False, chars: int
    ) -> list[TurnText]:
        return await self._turns.conversation(
            session_id, limit=limit, newest_first=newest_first, chars=chars
        )

    @translated
    async def set_verification(self, turn_id: str, verification: Verification) -> Turn | None:
        return await self._turns.set_verification(turn_id, verification)

    @translated
    async def add_feedback(self, turn_id: str, feedback: Feedback) -> Turn | None:
        return await self._turns.add_feedback(turn_id, feedback)

    # Search

    @translated
    async def search(self, request: SearchRequest) -> list[SessionHit]:
        turns = self._connection.turns
        if self._search_mode == "atlas":
            return await atlas.search_sessions(turns, request)
        return await search.search(
            self._connection.sessions, turns, VISIBLE, request, self._connection.languages
        )

    # Pins

    @translated
    async def pin(self, entity_id: str, pin: Pin) -> None:
        await self._pins.pin(entity_id, pin)

    @translated
    async def unpin(self, entity_id: str, user_id: str, session_id: str) -> None:
        await self._pins.unpin(entity_id, user_id, session_id)

    @translated
    async def pinned_session_ids(
        self, entity_id: str, user_id: str, session_ids: list[str]
    ) -> set[str]:
        return await self._pins.pinned_session_ids(entity_id, user_id, session_ids)

    @translated
    async def list_pinned(self, entity_id: str, user_id: str, limit: int) -> list[Session]:
        return await self._pins.list_pinned(entity_id, user_id, limit)

    # Shares

    @translated
    async def create_share(self, share: Share, audit: AuditEvent) -> Share:
        return await self._shares.create_share(share, audit)

    @translated
    async def get_share(self, share_id: str) -> Share | None:
        return await self._shares.get_share(share_id)

    @translated
    async def share_by_token_hash(self, token_hash: str) -> Share | None:
        return await self._shares.share_by_token_hash(token_hash)

    @translated
    async def list_shares(self, session_id: str) -> list[Share]:
        return await self._shares.list_shares(session_id)

    @translated
    async def revoke_share(
        self, share_id: str, at: datetime, by: str, audit: AuditEvent
    ) -> Share | None:
        return await self._shares.revoke_share(share_id, at, by, audit)

    @translated
    async def record_link_visit(
        self, share: Share, entity_id: str, user_id: str, at: datetime, audit: AuditEvent | None
    ) -> None:
        await self._shares.record_link_visit(share, entity_id, user_id, at, audit)

    @translated
    async def opened_link_ids(self, session_id: str, entity_id: str, user_id: str) -> set[str]:
        return await self._shares.opened_link_ids(session_id, entity_id, user_id)

    @translated
    async def list_shared_with(
        self, scope: GranteeScope, now: datetime, after: KeysetCursor | None, limit: int
    ) -> list[tuple[Session, datetime]]:
        return await self._shares.list_shared_with(scope, now, after, limit)

    @translated
    async def expire_due_shares(
        self, now: datetime, limit: int, audit_for: Callable[[Share], AuditEvent]
    ) -> list[Share]:
        await self._recovery.recover(now)
        return await self._shares.expire_due_shares(now, limit, audit_for)

    # Audit

    @translated
    async def append_audit(self, event: AuditEvent) -> None:
        await self._audit.append_audit(event)

    @translated
    async def list_audit(
        self,
        entity_id: str,
        audit_filter: AuditFilter,
        after: KeysetCursor | None,
        limit: int,
    ) -> list[AuditEvent]:
        return await self._audit.list_audit(entity_id, audit_filter, after, limit)

    # Session templates

    @translated
    async def create_template(self, template: EntityTemplate, audit: AuditEvent) -> None:
        await self._templates.create_template(template, audit)

    @translated
    async def get_template(self, entity_id: str, template_id: str) -> EntityTemplate | None:
        return await self._templates.get_template(entity_id, template_id)

    @translated
    async def list_templates(self, entity_id: str, chat_app_id: str) -> list[EntityTemplate]:
        return await self._templates.list_templates(entity_id, chat_app_id)

    @translated
    async def update_template(self, template: EntityTemplate, audit: AuditEvent) -> bool:
        return await self._templates.update_template(template, audit)

    @translated
    async def delete_template(self, entity_id: str, template_id: str, audit: AuditEvent) -> bool:
        return await self._templates.delete_template(entity_id, template_id, audit)
