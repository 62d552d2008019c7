"""The ports: what the domain needs from the outside world, as protocols that the adapters
implement and the composition root (server/app.py) wires in.

- `Store`: the database (storage/sqlite, storage/mongo).
- `Broker`: tells whoever follows a session that it changed (realtime/).
- `Offload`: runs CPU-heavy work away from the event loop (adapters/offload.py).
- `DocumentRenderer`: makes export documents (adapters/rendering).
- `Keyphrases`: the keyphrase extractor behind offline titles (adapters/keyphrases.py).

Single rows are fetched by id and checked by the access policy in the domain; every
Store query that lists takes an `OwnerScope` (entity and user), so no listing can forget
the entity filter. Adapters raise only `domain.errors` exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar, TypeVarTuple

from .documents import Document, ExportedSession, ExportFormat
from .events import SessionEvent
from .models import (
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
from .query import SearchRequest, SessionHit
from .removals import ContributionErasure, ExpirySweep

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Broker(Protocol):
    """After each commit, tell whoever follows the session."""

    async def publish(self, event: SessionEvent) -> None:
        """Deliver after commit; a failure to deliver never undoes the write (nor raises)."""

    async def close(self) -> None: ...


class Offload(Protocol):
    """Where CPU-heavy work runs, so that it does not stall the event loop. What is run
    must be a module-level function (or a method of a picklable object) taking and
    returning plain, picklable data: an offload may send it to another process."""

    async def run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """`fn(*args)`, computed away from the event loop; WorkStopped (domain/errors.py)
        from an offload that stops work past a budget."""

    async def aclose(self) -> None:
        """Release what runs the work: calls in progress are waited for (or, by an offload
        with a time budget, stopped), queued ones dropped."""


class DocumentRenderer(Protocol):
    """Makes the documents of exports, away from the event loop."""

    @property
    def formats(self) -> frozenset[ExportFormat]:
        """The formats this server can make (PDF and DOCX need the `export` extra)."""

    async def render(
        self,
        fmt: ExportFormat,
        items: list[ExportedSession],
        exported_at: datetime,
        max_bytes: int,
    ) -> Document:
        """The document; LimitExceeded when it would be larger than `max_bytes`,
        WorkStopped when its making was stopped past a time budget."""

    async def aclose(self) -> None: ...


class Keyphrases(Protocol):
    """A text's keyphrases, best first. Must be picklable: titles are made in a worker
    process."""

    def __call__(self, text: str, *, top: int, max_words: int, language: str) -> list[str]: ...


class Store(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema to the current version."""

    async def close(self) -> None: ...

    async def check_ready(self) -> None:
        """Raise StoreUnavailable, naming what is wrong, unless the store can read and
        write now (readiness: a store that answers may still be unable to write)."""

    # Sessions

    async def create_session(
        self, session: Session, first_turn: NewTurn | None, max_turns: int
    ) -> tuple[Session, Turn | None]:
        """Insert the session and, in the same transaction, its first turn."""

    async def get_session(self, session_id: str) -> Session | None: ...

    async def rename_session(
        self,
        session_id: str,
        title: str,
        source: TitleSource,
        at: datetime,
        *,
        if_title_version: int | None = None,
    ) -> Session | None:
        """Set the title and count the change in `title_version` (as every change of the
        title does, the erasure's too); the session as renamed. An AUTO title never
        replaces a MANUAL one, and with `if_title_version` the title is set only if the
        session's `title_version` is still that: the title has not changed since it was
        read. None when nothing was written: no such session, a MANUAL title in the way of
        an AUTO one, or a title changed meanwhile (the search index is left as it was)."""

    async def set_archived(
        self, session_id: str, archived_at: datetime | None, at: datetime
    ) -> Session | None: ...

    async def set_tags(
        self, session_id: str, tags: list[str], at: datetime, audit: AuditEvent | None = None
    ) -> Session | None:
        """Replace the session's tags (already normalised, in order) and set updated_at; the
        listing's and search's tag filters see them once this returns. `audit` (the
        change's event, which names tags) is recorded with the change, in one write: a
        deletion that comes before finds no session to tag (None, no event), one that comes
        after redacts the event. None when the session does not exist."""

    async def set_status(
        self, session_id: str, status: SessionStatus, at: datetime
    ) -> Session | None:
        """Set the status and updated_at. None when the session does not exist."""

    async def apply_retention(self, chat_app_id: str, days: int) -> int:
        """Set every session of the chat app to expire `days` after its last activity (a
        changed retention setting reaches sessions written before it), in batches that
        let other writes through. Returns how many sessions it looked at."""

    async def remove_expired(self, sweep: ExpirySweep) -> list[Session]:
        """Delete the sweep's batch of expired sessions, each exactly as `delete_session`
        does (turns, tags, pins, shares, link visits, search entries, earlier events
        redacted with `sweep.redact`) with `sweep.audit_for(session)` recorded alongside.
        Returns the sessions removed. With `dry_run` nothing changes and the sessions that
        would be removed are returned."""

    async def erase_sessions(
        self,
        session_ids: list[str],
        audit_for: Callable[[Session], AuditEvent],
        redact: Callable[[JSON], JSON],
    ) -> tuple[list[Session], int]:
        """Right to erasure, the sessions a user owns: delete each as `delete_session`
        does, with `audit_for(session)` recorded and the earlier audit events about them
        redacted with `redact`, in one transaction. Returns the
        sessions deleted (those already gone are skipped) and how many events it redacted."""

    async def erase_contributions(
        self, erasure: ContributionErasure
    ) -> tuple[ErasureCounts, list[str]]:
        """Right to erasure, what the person (`entity_id`, `user_id`) left in other
        people's sessions, one batch of at most `batch` of each kind: their turns emptied
        (content and payloads gone, author `ERASED_AUTHOR` of the session's entity, out of
        the search index, `metadata` {"erasedAt": at}) in sessions of their entity and in
        those of other entities they wrote in as an external grantee; their feedback
        anywhere, pins, the shares granted to them, the links they opened, their place among
        (external) participants, their name on the shares and templates they created
        (`ERASED_AUTHOR`), and `redact` over the details of the audit events of their
        entity they are the actor of. A user of another entity with the same id is another
        person and keeps all of theirs. Where the emptied turns said something (USER or
        ASSISTANT text) and the session's title is not MANUAL, the title becomes
        `opening_words` of its first USER turn left (None without one), PENDING, in the
        search index too. Returns what this batch changed, all zero when nothing is left
        (so calling it until then finishes an interrupted erasure), and the ids of the
        sessions it retitled."""

    async def tag_counts(
        self, scope: OwnerScope, now: datetime, limit: int
    ) -> list[tuple[str, int]]:
        """The tags on the scope's sessions not expired at `now`, with how many sessions
        carry each, most used first (ties by name), at most `limit` of them."""

    async def delete_session(
        self, session_id: str, audit: AuditEvent, redact: Callable[[JSON], JSON]
    ) -> bool:
        """Remove the session with its turns, pins and shares, replace the details of the
        earlier audit events about it with `redact(details)` and record `audit`, atomically.
        False when there was nothing to delete. Every deletion of a session
        (`remove_expired`, `erase_sessions`) does the same. `redact` is the domain's rule
        (`redaction.redact_details`); it marks what it returns `"redacted": true`, and an
        event so marked is never redacted again."""

    async def list_sessions(
        self,
        scope: OwnerScope,
        session_filter: SessionFilter,
        after: SessionCursor | None,
        limit: int,
    ) -> list[Session]:
        """The scope's sessions (one owner's, or the whole entity's), most recent activity
        first (ties by id); with `session_filter.live_at`, only those not expired then."""

    # Turns

    async def append_turn(
        self, turn: NewTurn, max_turns: int, retention_days: int | None = None
    ) -> tuple[Turn, Session]:
        """Give the turn the next seq of its session and store it with the session's
        counters and its author among the session's participants (a person of another
        entity among its external participants), atomically. LimitExceeded when the
        session already holds `max_turns`; NotFound when the session is gone. With
        `retention_days`, the session's expires_at becomes its (new) last activity plus
        that many days, in the same write."""

    async def get_turn(self, turn_id: str) -> Turn | None: ...

    async def list_turns(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int,
        newest_first: bool = False,
    ) -> list[Turn]:
        """Turns with after_seq < seq < before_seq, the `limit` oldest (or newest)."""

    async def conversation(
        self, session_id: str, *, limit: int, newest_first: bool = False, chars: int
    ) -> list[TurnText]:
        """The `limit` oldest (or newest) USER and ASSISTANT turns that say something, in
        that order, each cut to its first `chars` characters: what titles are made from,
        without the rest of the turns (tool payloads, traces) that they would not read."""

    async def set_verification(self, turn_id: str, verification: Verification) -> Turn | None: ...

    async def add_feedback(self, turn_id: str, feedback: Feedback) -> Turn | None:
        """Record the feedback, replacing the same person's (entity and user) earlier one
        of the same kind."""

    # Search

    async def search(self, request: SearchRequest) -> list[SessionHit]:
        """Sessions within the request's scope whose title or turns match, one hit per
        session with its best few turns and marked snippets; by relevance (best first, keyed
        on (score, id) ascending) or newest activity first (keyed on (activity micros, id)
        descending). Changes are visible to search as soon as the write that made them
        returns."""

    # Pins (per user)

    async def pin(self, entity_id: str, pin: Pin) -> None:
        """Idempotent: pinning twice keeps the first pinned_at."""

    async def unpin(self, entity_id: str, user_id: str, session_id: str) -> None: ...

    async def pinned_session_ids(
        self, entity_id: str, user_id: str, session_ids: list[str]
    ) -> set[str]: ...

    async def list_pinned(self, entity_id: str, user_id: str, limit: int) -> list[Session]:
        """Sessions the user pinned, most recently pinned first."""

    # Shares

    async def create_share(self, share: Share, audit: AuditEvent) -> Share:
        """Store the share and its audit event together; NotFound if the session is gone."""

    async def get_share(self, share_id: str) -> Share | None: ...

    async def share_by_token_hash(self, token_hash: str) -> Share | None: ...

    async def list_shares(self, session_id: str) -> list[Share]:
        """Every share of the session, live or not, oldest first."""

    async def revoke_share(
        self, share_id: str, at: datetime, by: str, audit: AuditEvent
    ) -> Share | None:
        """Revoke once: the first call records `audit`; later calls change nothing.
        Returns the share as stored, None when it does not exist."""

    async def record_link_visit(
        self, share: Share, entity_id: str, user_id: str, at: datetime, audit: AuditEvent | None
    ) -> None:
        """Remember that this user opened the LINK share (and record `audit` with it)."""

    async def opened_link_ids(self, session_id: str, entity_id: str, user_id: str) -> set[str]: ...

    async def list_shared_with(
        self, scope: GranteeScope, now: datetime, after: KeysetCursor | None, limit: int
    ) -> list[tuple[Session, datetime]]:
        """Sessions of others that a live share grants to the scope's user (USER, EXTERNAL,
        ENTITY for internal users, LINK once opened), each once with the time of its newest
        grant, newest first; `after` is keyed on (that time, session id)."""

    async def expire_due_shares(
        self, now: datetime, limit: int, audit_for: Callable[[Share], AuditEvent]
    ) -> list[Share]:
        """Mark up to `limit` shares whose expiry has passed as recorded, with an audit event
        each, and return them; each share is returned once, ever."""

    # Audit (append-only)

    async def append_audit(self, event: AuditEvent) -> None: ...

    async def list_audit(
        self,
        entity_id: str,
        audit_filter: AuditFilter,
        after: KeysetCursor | None,
        limit: int,
    ) -> list[AuditEvent]:
        """The entity's events, newest first, keyed on (at, id)."""

    # Session templates defined by admins, each of one entity and one chat app

    async def create_template(self, template: EntityTemplate, audit: AuditEvent) -> None:
        """Store the template and record `audit`, atomically. Conflict when the entity
        already has a template of the same `name_key` in that chat app."""

    async def get_template(self, entity_id: str, template_id: str) -> EntityTemplate | None:
        """The template when it exists and belongs to `entity_id`; None otherwise."""

    async def list_templates(self, entity_id: str, chat_app_id: str) -> list[EntityTemplate]:
        """The entity's templates of the chat app, by `name_key`, then id."""

    async def update_template(self, template: EntityTemplate, audit: AuditEvent) -> bool:
        """Replace the name, description, system prompt, variables, starter turns and
        updated_at of the entity's template with the same id (entity, chat app and creation
        stay), and record `audit`, atomically. False when the entity has no such template;
        Conflict when the new name's key is taken in the chat app."""

    async def delete_template(self, entity_id: str, template_id: str, audit: AuditEvent) -> bool:
        """Remove the entity's template and record `audit`, atomically. False when the
        entity has no such template."""
