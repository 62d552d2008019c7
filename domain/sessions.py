"""The session lifecycle: create, converse, annotate, organise, find and resume."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from . import validation as check
from .audit import audit_event, deletion_event
from .bulk import ItemResult, ItemStatus, distinct_ids
from .chat_apps import ChatApps
from .clock import Clock, new_id
from .commands import AddFeedback, AppendTurn, CreateSession, SendMessage, SetVerification
from .context import AgentContext, build_context
from .errors import (
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFound,
    session_not_found,
    turn_not_found,
)
from .events import SessionCreated, SessionDeleted, SessionUpdated, TurnAdded, TurnUpdated
from .models import (
    JSON,
    ChatApp,
    Feedback,
    GranteeKind,
    NewTurn,
    OwnerScope,
    Pin,
    Principal,
    Session,
    SessionFilter,
    SessionStatus,
    SessionTemplate,
    Share,
    TitleSource,
    ToolInvocation,
    Turn,
    TurnPage,
    TurnRole,
    Verification,
)
from .pagination import decode_session_cursor, page_size
from .people import session_seen_by, turn_seen_by, turns_seen_by
from .policy import (
    Access,
    access_to,
    can_interact,
    can_manage,
    can_read,
    can_set_status,
    can_verify,
    is_owner,
    may_act_on_behalf,
    may_append_role,
    sees_whole_entity,
    shares_can_add,
)
from .ports import Broker, Store
from .redaction import redact_details
from .templates import find_template
from .titles import TitleScheduler, opening_words


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


@dataclass(slots=True)
class BulkOutcome:
    """One result per distinct id asked for, in order, and the sessions as they are after
    the change (only those whose result is DONE and that still exist)."""

    results: list[ItemResult] = field(default_factory=list)
    sessions: list[SessionView] = field(default_factory=list)


MAX_TAG_COUNTS = 1000
# pinnedSessions shows a user's most recent pins, at most this many.
PINNED_SHOWN = 100


@dataclass(slots=True)
class SessionPage:
    items: list[SessionView]
    has_next: bool


class SessionService:
    def __init__(
        self,
        store: Store,
        chat_apps: ChatApps,
        broker: Broker,
        clock: Clock,
        limits: check.Limits | None = None,
        titles: TitleScheduler | None = None,
    ) -> None:
        self._store = store
        self._chat_apps = chat_apps
        self._broker = broker
        self._clock = clock
        self._limits = limits or check.Limits()
        # Told of each committed turn; titles are made in the background, never awaited.
        self._titles = titles

    # Reading

    async def view(self, principal: Principal, session_id: str) -> SessionView:
        """The session if `principal` may read it; NotFound otherwise, whatever the cause.
        A read by anyone but the owner goes into the audit trail."""
        session, access = await self._load(principal, session_id)
        if not is_owner(principal, session):
            await self._store.append_audit(
                audit_event(principal, session, "session.read", self._clock.now(), access=access)
            )
        return self._view_of(principal, session, access)

    async def find_quietly(self, principal: Principal, session: Session) -> SessionView | None:
        """The caller's view of a session found by a listing; reading its turns or context
        is audited then, not the listing itself."""
        access = await self._listed_access(principal, session)
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

    async def list(
        self,
        principal: Principal,
        session_filter: SessionFilter,
        first: int | None,
        after: str | None,
    ) -> SessionPage:
        limit = page_size(first, 30)
        cursor = decode_session_cursor(after) if after else None
        if session_filter.all_owners and not sees_whole_entity(principal):
            raise Forbidden("Listing every owner's sessions needs auditor, entity-admin or admin.")
        owner = None if session_filter.all_owners else principal.user_id
        scope = OwnerScope(principal.entity_id, owner)
        now = self._clock.now()
        session_filter = replace(session_filter, live_at=now)
        sessions = await self._store.list_sessions(scope, session_filter, cursor, limit + 1)
        has_next = len(sessions) > limit
        sessions = sessions[:limit]
        pinned = await self._store.pinned_session_ids(
            principal.entity_id, principal.user_id, [s.id for s in sessions]
        )
        views = []
        for s in sessions:
            chat_app = self._chat_apps.get(s.chat_app_id)
            views.append(
                SessionView(
                    s,
                    access_to(principal, s, chat_app, (), now),
                    chat_app,
                    s.id in pinned,
                    viewer=principal,
                    audience=principal.entity_id,
                )
            )
        return SessionPage(views, has_next)

    async def is_pinned(self, principal: Principal, session_id: str) -> bool:
        pinned = await self._store.pinned_session_ids(
            principal.entity_id, principal.user_id, [session_id]
        )
        return bool(pinned)

    async def pinned(self, principal: Principal, limit: int = PINNED_SHOWN) -> list[SessionView]:
        sessions = await self._store.list_pinned(principal.entity_id, principal.user_id, limit)
        views = []
        for session in sessions:
            access = await self._listed_access(principal, session)
            # A pin outlives the access that allowed it; what is no longer readable is hidden.
            if can_read(access):
                chat_app = self._chat_apps.get(session.chat_app_id)
                views.append(
                    SessionView(
                        session,
                        access,
                        chat_app,
                        True,
                        viewer=principal,
                        audience=principal.entity_id,
                    )
                )
        return views

    async def turns(
        self,
        view: SessionView,
        *,
        first: int | None = None,
        after_seq: int | None = None,
        last: int | None = None,
        before_seq: int | None = None,
    ) -> TurnPage:
        if first is not None and last is not None:
            raise InvalidInput("Ask for either the first or the last turns, not both.")
        await self._record_listed_read(view)
        session_id = view.session.id
        if first is not None or after_seq is not None:
            limit = page_size(first, 50)
            turns = await self._store.list_turns(
                session_id, after_seq=after_seq, before_seq=before_seq, limit=limit + 1
            )
            has_after = len(turns) > limit
            turns = turns[:limit]
            has_before = bool(turns) and turns[0].seq > 1 if after_seq is None else after_seq > 0
            return TurnPage(
                turns_seen_by(view.audience, turns),
                has_more_before=has_before,
                has_more_after=has_after,
            )
        limit = page_size(last, 50)
        turns = await self._store.list_turns(
            session_id, before_seq=before_seq, limit=limit + 1, newest_first=True
        )
        has_before = len(turns) > limit
        turns = turns_seen_by(view.audience, list(reversed(turns[:limit])))
        has_after = before_seq is not None and before_seq <= view.session.turn_count
        return TurnPage(turns, has_more_before=has_before, has_more_after=has_after)

    async def context(self, view: SessionView, max_turns: int | None) -> AgentContext:
        history = view.chat_app.settings.max_session_history if view.chat_app else 500
        if max_turns is not None and max_turns < 1:
            raise InvalidInput("maxTurns must be at least 1.")
        await self._record_listed_read(view)
        limit = min(max_turns or history, history)
        newest = await self._store.list_turns(view.session.id, limit=limit, newest_first=True)
        return build_context(view.session, turns_seen_by(view.audience, list(reversed(newest))))

    # Creating and conversing

    async def create(self, principal: Principal, command: CreateSession) -> SessionView:
        chat_app = self._chat_app(command.chat_app_id)
        owner = self._acting_user(principal, command.on_behalf_of)
        title = check.title(command.title, self._limits) if command.title is not None else None
        session = self._new_session(principal, owner, chat_app, title)
        session.tags = check.tags(command.tags, self._limits)
        session.metadata = check.json_value(command.metadata, self._limits, "metadata")
        agent_context = check.json_value(command.agent_context, self._limits, "agent context")
        template = None
        if command.template_id is not None:
            check.identifier(command.template_id, self._limits, "template id")
            template = await find_template(self._store, principal, chat_app, command.template_id)
            if template is None:
                raise NotFound(
                    f"Template {command.template_id!r} does not exist in chat app {chat_app.id!r}."
                )
            session.template_id = template.id
            agent_context = _template_context(template, agent_context)
        session.agent_context = agent_context
        # The first starter turn is stored in the session's own transaction; the rest are
        # appended right after it, in order (the store takes one first turn).
        starters = [
            NewTurn(
                new_id(),
                session.id,
                starter.role,
                TEMPLATE_AUTHOR if starter.role is TurnRole.ASSISTANT else owner,
                starter.content,
                self._clock.now(),
                author_entity_id=principal.entity_id,
            )
            for starter in (template.starter_turns if template else ())
        ]
        limit = chat_app.settings.max_session_history
        stored, first = await self._store.create_session(
            session, starters[0] if starters else None, limit
        )
        await self._broker.publish(SessionCreated(stored))
        if first is not None:
            await self._broker.publish(TurnAdded(first))
        for turn in starters[1:]:
            added, stored = await self._store.append_turn(
                turn, limit, chat_app.settings.retention_days
            )
            await self._broker.publish(TurnAdded(added))
        return SessionView(stored, Access.MANAGE, chat_app, False, audience=principal.entity_id)

    async def send_message(
        self, principal: Principal, command: SendMessage
    ) -> tuple[SessionView, Turn]:
        text = check.content(command.content, self._limits, required=True, what="message")
        parts = check.json_value(command.parts, self._limits, "parts")
        metadata = check.json_value(command.metadata, self._limits, "metadata")
        now = self._clock.now()
        if command.session_id is None:
            if command.chat_app_id is None:
                raise InvalidInput("Give a chatAppId to start a new session, or a sessionId.")
            chat_app = self._chat_app(command.chat_app_id)
            author = self._acting_user(principal, command.on_behalf_of)
            session = self._new_session(principal, author, chat_app, None)
            # The opening words stand in until a generated title replaces a PENDING one;
            # with automatic titles off they are the title.
            session.title = opening_words(text) or None
            if session.title and not chat_app.settings.auto_generate_titles:
                session.title_source = TitleSource.AUTO
            turn = NewTurn(
                new_id(),
                session.id,
                TurnRole.USER,
                author,
                text,
                now,
                parts,
                metadata=metadata,
                author_entity_id=principal.entity_id,
            )
            stored, added = await self._store.create_session(
                session, turn, chat_app.settings.max_session_history
            )
            assert added is not None
            await self._broker.publish(SessionCreated(stored))
            await self._broker.publish(TurnAdded(added))
            view = SessionView(stored, Access.MANAGE, chat_app, False, audience=principal.entity_id)
            return view, turn_seen_by(principal.entity_id, added)

        session, access = await self._load(principal, command.session_id)
        if not can_interact(access):
            raise Forbidden("You may read this session but not write to it.")
        author = self._acting_user(principal, command.on_behalf_of, session)
        turn = NewTurn(
            new_id(),
            session.id,
            TurnRole.USER,
            author,
            text,
            now,
            parts,
            metadata=metadata,
            author_entity_id=principal.entity_id,
        )
        added, stored = await self._store.append_turn(
            turn, self._history_limit(session), self._retention_days(session)
        )
        await self._broker.publish(TurnAdded(added))
        if self._titles is not None:
            self._titles.notify(stored, added)
        return self._view_of(principal, stored, access), turn_seen_by(principal.entity_id, added)

    async def append_turn(self, principal: Principal, command: AppendTurn) -> Turn:
        session, access = await self._load(principal, command.session_id)
        if not can_interact(access):
            raise Forbidden("You may read this session but not write to it.")
        chat_app = self._chat_apps.get(session.chat_app_id)
        if not may_append_role(principal, session, access, command.role, chat_app):
            raise Forbidden(
                f"Only the session's owner and its entity's agent service may append "
                f"{command.role.value} turns; as a collaborator you write USER turns."
            )
        tools = self._tool_invocations(command)
        required = command.role is TurnRole.USER or not (tools or command.parts)
        text = check.content(command.content, self._limits, required=required)
        usage = command.usage
        check.count(usage.input_tokens, "input token count")
        check.count(usage.output_tokens, "output token count")
        check.number(usage.cost, "cost", low=0, high=1e9)
        author = self._acting_user(principal, command.on_behalf_of, session)
        turn = NewTurn(
            id=new_id(),
            session_id=session.id,
            role=command.role,
            author_id=author,
            author_entity_id=principal.entity_id,
            content=text,
            created_at=self._clock.now(),
            parts=check.json_value(command.parts, self._limits, "parts"),
            tool_invocations=tools,
            trace=check.json_value(command.trace, self._limits, "trace"),
            insights=check.json_value(command.insights, self._limits, "insights"),
            metadata=check.json_value(command.metadata, self._limits, "metadata"),
            usage=usage,
        )
        added, stored = await self._store.append_turn(
            turn, self._history_limit(session), self._retention_days(session)
        )
        await self._broker.publish(TurnAdded(added))
        if self._titles is not None:
            self._titles.notify(stored, added)
        return turn_seen_by(principal.entity_id, added)

    async def set_verification(
        self, principal: Principal, turn_id: str, command: SetVerification
    ) -> Turn:
        turn, session, access = await self._load_turn(principal, turn_id)
        if not can_verify(principal, session, access):
            raise Forbidden(
                "Only the session's owner, an admin or its entity's agent service grades turns."
            )
        verification = Verification(
            grade=command.grade,
            score=check.number(command.score, "score", low=0, high=1),
            notes=check.optional_text(
                command.notes, self._limits.max_comment_chars, "verification notes"
            ),
            verified_at=self._clock.now(),
            verified_by=principal.user_id,
            verified_by_entity_id=principal.entity_id,
        )
        updated = await self._store.set_verification(turn.id, verification)
        if updated is None:
            raise turn_not_found(turn_id)
        await self._broker.publish(TurnUpdated(updated))
        return turn_seen_by(principal.entity_id, updated)

    async def add_feedback(self, principal: Principal, turn_id: str, command: AddFeedback) -> Turn:
        turn, _, access = await self._load_turn(principal, turn_id)
        if not can_interact(access):
            raise Forbidden("You may read this session but not give feedback on it.")
        feedback = Feedback(
            user_id=principal.user_id,
            kind=command.kind,
            comment=check.optional_text(
                command.comment, self._limits.max_comment_chars, "feedback comment"
            ),
            at=self._clock.now(),
            entity_id=principal.entity_id,
        )
        updated = await self._store.add_feedback(turn.id, feedback)
        if updated is None:
            raise turn_not_found(turn_id)
        await self._broker.publish(TurnUpdated(updated))
        return turn_seen_by(principal.entity_id, updated)

    # Organising

    async def rename(self, principal: Principal, session_id: str, title: str) -> SessionView:
        session, access = await self.load_managed(principal, session_id)
        cleaned = check.title(title, self._limits)
        renamed = await self._store.rename_session(
            session.id, cleaned, TitleSource.MANUAL, self._clock.now()
        )
        if renamed is None:
            raise session_not_found(session_id)
        await self._broker.publish(SessionUpdated(renamed))
        return self._view_of(principal, renamed, access)

    async def set_pinned(self, principal: Principal, session_id: str, pinned: bool) -> SessionView:
        session, access = await self._load(principal, session_id)
        chat_app = self._chat_apps.get(session.chat_app_id)
        if pinned:
            if chat_app is not None and not chat_app.settings.allow_pinning:
                raise Forbidden(f"The chat app {session.chat_app_id!r} does not allow pinning.")
            await self._store.pin(
                principal.entity_id, Pin(principal.user_id, session.id, self._clock.now())
            )
        else:
            await self._store.unpin(principal.entity_id, principal.user_id, session.id)
        return SessionView(session, access, chat_app, pinned, audience=principal.entity_id)

    async def set_archived(
        self, principal: Principal, session_id: str, archived: bool
    ) -> SessionView:
        session, access = await self.load_managed(principal, session_id)
        now = self._clock.now()
        if archived == (session.archived_at is not None):
            updated = session
        else:
            updated = await self._store.set_archived(session.id, now if archived else None, now)
            if updated is None:
                raise session_not_found(session_id)
            await self._broker.publish(SessionUpdated(updated))
        return self._view_of(principal, updated, access)

    async def delete(self, principal: Principal, session_id: str) -> None:
        session, _ = await self.load_managed(principal, session_id)
        await self._delete_loaded(principal, session)

    async def _delete_loaded(self, principal: Principal, session: Session) -> None:
        audit = deletion_event(principal, session, self._clock.now())
        # Read before they go with the session: their grantees' sidebars hear of the deletion.
        now = self._clock.now()
        shares = tuple(s for s in await self._store.list_shares(session.id) if s.is_live(now))
        if not await self._store.delete_session(session.id, audit, redact_details):
            raise session_not_found(session.id)
        await self._broker.publish(
            SessionDeleted(session.id, session.entity_id, session.owner_id, shares)
        )

    async def set_status(
        self, principal: Principal, session_id: str, status: SessionStatus
    ) -> SessionView:
        """COMPLETED or ACTIVE again: by the owner, an admin or the entity's service."""
        session, access = await self._load(principal, session_id)
        if not can_set_status(principal, session, access):
            raise Forbidden("Only the session's owner, an admin or the agent service may do that.")
        if session.status is status:
            return self._view_of(principal, session, access)
        now = self._clock.now()
        updated = await self._store.set_status(session.id, status, now)
        if updated is None:
            raise session_not_found(session_id)
        action = "session.completed" if status is SessionStatus.COMPLETED else "session.reopened"
        await self._store.append_audit(audit_event(principal, updated, action, now))
        await self._broker.publish(SessionUpdated(updated))
        return self._view_of(principal, updated, access)

    # Many sessions at once: each id its own result, one bad id never stops the others.

    async def tag(
        self,
        principal: Principal,
        ids: list[str],
        add: list[str] | None,
        remove: list[str] | None,
    ) -> BulkOutcome:
        to_add = check.distinct_tags(add or [], self._limits)
        to_remove = check.distinct_tags(remove or [], self._limits)
        if not to_add and not to_remove:
            raise InvalidInput("Give tags to add or to remove.")
        both = sorted(set(to_add) & set(to_remove))
        if both:
            raise InvalidInput(f"Tags both added and removed: {', '.join(both)}.")
        dropped = set(to_remove)

        async def retag(session: Session, access: Access) -> Session:
            kept = [t for t in session.tags if t not in dropped]
            tags = kept + [t for t in to_add if t not in kept]
            if tags == session.tags:
                return session
            if len(tags) > self._limits.max_tags:
                raise LimitExceeded(f"A session holds at most {self._limits.max_tags} tags.")
            now = self._clock.now()
            added = [t for t in tags if t not in session.tags]
            removed = [t for t in session.tags if t not in tags]
            # One store call: a deletion in between would leave the tag names behind.
            tagged = audit_event(
                principal, session, "session.tagged", now, added=added, removed=removed
            )
            updated = await self._store.set_tags(session.id, tags, now, tagged)
            if updated is None:
                raise session_not_found(session.id)
            await self._broker.publish(SessionUpdated(updated))
            return updated

        return await self._each_managed(principal, ids, retag)

    async def bulk_archive(self, principal: Principal, ids: list[str]) -> BulkOutcome:
        async def archive(session: Session, access: Access) -> Session:
            if session.archived_at is not None:
                return session
            now = self._clock.now()
            updated = await self._store.set_archived(session.id, now, now)
            if updated is None:
                raise session_not_found(session.id)
            await self._store.append_audit(audit_event(principal, updated, "session.archived", now))
            await self._broker.publish(SessionUpdated(updated))
            return updated

        return await self._each_managed(principal, ids, archive)

    async def bulk_delete(self, principal: Principal, ids: list[str]) -> BulkOutcome:
        """Each deletion as deleteSession does it: search rows, turns, pins and shares go
        with the session, and a `session.deleted` audit event stays."""

        async def delete(session: Session, access: Access) -> None:
            await self._delete_loaded(principal, session)

        return await self._each_managed(principal, ids, delete)

    async def tag_counts(self, principal: Principal, first: int | None) -> list[tuple[str, int]]:
        """The caller's own tag names, most used first, with how many sessions carry each."""
        limit = 100 if first is None else first
        if not 1 <= limit <= MAX_TAG_COUNTS:
            raise InvalidInput(f"first must be between 1 and {MAX_TAG_COUNTS}, got {limit}.")
        return await self._store.tag_counts(
            OwnerScope(principal.entity_id, principal.user_id), self._clock.now(), limit
        )

    async def _each_managed(
        self,
        principal: Principal,
        ids: list[str],
        change: Callable[[Session, Access], Awaitable[Session | None]],
    ) -> BulkOutcome:
        outcome = BulkOutcome()
        for session_id in distinct_ids(ids):
            try:
                if not session_id.strip() or len(session_id) > self._limits.max_id_chars:
                    raise session_not_found(session_id)
                session, access = await self.load_managed(principal, session_id)
                changed = await change(session, access)
            except NotFound as exc:
                outcome.results.append(ItemResult(session_id, ItemStatus.NOT_FOUND, exc.message))
            except Forbidden as exc:
                outcome.results.append(ItemResult(session_id, ItemStatus.FORBIDDEN, exc.message))
            except (InvalidInput, LimitExceeded) as exc:
                outcome.results.append(ItemResult(session_id, ItemStatus.REJECTED, exc.message))
            else:
                outcome.results.append(ItemResult(session_id, ItemStatus.DONE))
                if changed is not None:
                    outcome.sessions.append(self._view_of(principal, changed, access))
        return outcome

    def chat_apps(self) -> list[ChatApp]:
        return self._chat_apps.all()

    # Helpers

    async def _record_listed_read(self, view: SessionView) -> None:
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

    async def _listed_access(self, principal: Principal, session: Session) -> Access:
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

    async def _load(self, principal: Principal, session_id: str) -> tuple[Session, Access]:
        check.identifier(session_id, self._limits, "session id")
        session = await self._store.get_session(session_id)
        if session is None:
            await self._grants(principal, session_id)
            raise session_not_found(session_id)
        access = await self._access(principal, session)
        if not can_read(access):
            raise session_not_found(session_id)
        return session, access

    async def load_readable(self, principal: Principal, session_id: str) -> tuple[Session, Access]:
        return await self._load(principal, session_id)

    async def load_managed(self, principal: Principal, session_id: str) -> tuple[Session, Access]:
        session, access = await self._load(principal, session_id)
        if not can_manage(access):
            raise Forbidden("Only the session's owner or an admin may do that.")
        return session, access

    async def _load_turn(self, principal: Principal, turn_id: str) -> tuple[Turn, Session, Access]:
        check.identifier(turn_id, self._limits, "turn id")
        turn = await self._store.get_turn(turn_id)
        try:
            # A missing turn's own id stands for its session: no session has it, and the
            # look-ups are those of a turn in a session the caller may not see.
            session, access = await self._load(principal, turn.session_id if turn else turn_id)
        except NotFound as exc:
            raise turn_not_found(turn_id) from exc
        if turn is None:
            raise turn_not_found(turn_id)
        return turn, session, access

    def _view_of(self, principal: Principal, session: Session, access: Access) -> SessionView:
        chat_app = self._chat_apps.get(session.chat_app_id)
        return SessionView(session, access, chat_app, None, audience=principal.entity_id)

    def _chat_app(self, chat_app_id: str) -> ChatApp:
        chat_app = self._chat_apps.get(chat_app_id)
        if chat_app is None:
            raise NotFound(f"Chat app {chat_app_id!r} does not exist.")
        return chat_app

    def _history_limit(self, session: Session) -> int:
        chat_app = self._chat_apps.get(session.chat_app_id)
        return chat_app.settings.max_session_history if chat_app else 500

    def _retention_days(self, session: Session) -> int | None:
        chat_app = self._chat_apps.get(session.chat_app_id)
        return chat_app.settings.retention_days if chat_app else None

    async def apply_retention(self) -> dict[str, int]:
        """Re-apply every chat app's retentionDays to its sessions (run at start, so that
        a changed setting reaches sessions written before it). Sessions per chat app."""
        return {
            app.id: await self._store.apply_retention(app.id, app.settings.retention_days)
            for app in self._chat_apps.all()
        }

    def _acting_user(
        self, principal: Principal, on_behalf_of: str | None, session: Session | None = None
    ) -> str:
        """Who a write is authored by; `session` is the one written to, None for a new one."""
        if on_behalf_of is None or on_behalf_of == principal.user_id:
            return principal.user_id
        if not may_act_on_behalf(principal, session):
            raise Forbidden("Only a service of the session's entity may act on behalf of a user.")
        return check.identifier(on_behalf_of, self._limits, "onBehalfOf user id")

    def _new_session(
        self, principal: Principal, owner: str, chat_app: ChatApp, title: str | None
    ) -> Session:
        now = self._clock.now()
        return Session(
            id=new_id(),
            entity_id=principal.entity_id,
            chat_app_id=chat_app.id,
            owner_id=owner,
            title=title,
            title_source=TitleSource.MANUAL if title else TitleSource.PENDING,
            created_at=now,
            updated_at=now,
            last_activity_at=now,
            participants=[owner],
            status=SessionStatus.ACTIVE,
            expires_at=now + timedelta(days=chat_app.settings.retention_days),
        )

    def _tool_invocations(self, command: AppendTurn) -> list[ToolInvocation]:
        if len(command.tool_invocations) > self._limits.max_tool_invocations:
            raise InvalidInput(
                f"A turn holds at most {self._limits.max_tool_invocations} tool invocations."
            )
        tools = []
        for item in command.tool_invocations:
            if not item.name.strip():
                raise InvalidInput("A tool invocation needs the tool's name.")
            if item.duration_ms is not None:
                check.number(item.duration_ms, "tool duration", low=0, high=1e10)
            tools.append(
                ToolInvocation(
                    id=item.id or new_id(),
                    name=item.name,
                    input=check.json_value(item.input, self._limits, "tool input"),
                    output=check.json_value(item.output, self._limits, "tool output"),
                    status=item.status,
                    error=check.optional_text(
                        item.error, self._limits.max_content_chars, "tool error"
                    ),
                    started_at=item.started_at,
                    duration_ms=item.duration_ms,
                )
            )
        return tools


TEMPLATE_AUTHOR = "template"
"""The author of a template's ASSISTANT starter turns; USER and SYSTEM ones are the owner's."""


def _template_context(template: SessionTemplate, given: JSON) -> JSON:
    """The template's system prompt and variables, with the caller's agent context on top:
    top-level keys given win, and given variables are merged over the template's."""
    merged: dict[str, Any] = {}
    if template.system_prompt is not None:
        merged["systemPrompt"] = template.system_prompt
    if template.variables is not None:
        merged["variables"] = template.variables
    if given is None:
        return merged or None
    if not isinstance(given, dict):
        raise InvalidInput("With a template, agentContext must be an object.")
    if "system_prompt" in given:  # the snake_case spelling the context also reads
        merged.pop("systemPrompt", None)
    variables = given.get("variables")
    if isinstance(variables, dict) and isinstance(merged.get("variables"), dict):
        given = {**given, "variables": {**merged["variables"], **variables}}
    return {**merged, **given}
