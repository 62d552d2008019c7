"""Sessions as their people find and keep them: reading one, listing, pins, turns and the
agent context for resuming; and organising: rename, pin, archive, status, tags, delete,
one session or many at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from . import validation as check
from .access import SessionView
from .audit import audit_event, deletion_event
from .bulk import ItemResult, ItemStatus, distinct_ids
from .collaborators import ActsOnSessions
from .context import AgentContext, build_context
from .errors import (
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFound,
    session_not_found,
)
from .events import SessionDeleted, SessionUpdated
from .models import (
    ChatApp,
    OwnerScope,
    Pin,
    Principal,
    Session,
    SessionFilter,
    SessionStatus,
    TitleSource,
    TurnPage,
)
from .pagination import decode_session_cursor, page_size
from .people import turns_seen_by
from .policy import (
    Access,
    access_to,
    can_read,
    can_set_status,
    sees_whole_entity,
)
from .redaction import redact_details


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


class SessionService(ActsOnSessions):
    # Reading

    async def page(
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
            access = await self._access.listed_access(principal, session)
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
        await self._access.record_listed_read(view)
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
        await self._access.record_listed_read(view)
        limit = min(max_turns or history, history)
        newest = await self._store.list_turns(view.session.id, limit=limit, newest_first=True)
        return build_context(view.session, turns_seen_by(view.audience, list(reversed(newest))))

    # Organising

    async def rename(self, principal: Principal, session_id: str, title: str) -> SessionView:
        session, access = await self._access.load_managed(principal, session_id)
        cleaned = check.title(title, self._limits)
        renamed = await self._store.rename_session(
            session.id, cleaned, TitleSource.MANUAL, self._clock.now()
        )
        if renamed is None:
            raise session_not_found(session_id)
        await self._broker.publish(SessionUpdated(renamed))
        return self._access.view_of(principal, renamed, access)

    async def set_pinned(self, principal: Principal, session_id: str, pinned: bool) -> SessionView:
        session, access = await self._access.load_readable(principal, session_id)
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
        session, access = await self._access.load_managed(principal, session_id)
        if archived == (session.archived_at is not None):
            return self._access.view_of(principal, session, access)
        now = self._clock.now()
        updated = await self._store.set_archived(session.id, now if archived else None, now)
        if updated is None:
            raise session_not_found(session_id)
        await self._broker.publish(SessionUpdated(updated))
        return self._access.view_of(principal, updated, access)

    async def delete(self, principal: Principal, session_id: str) -> None:
        session, _ = await self._access.load_managed(principal, session_id)
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
        session, access = await self._access.load_readable(principal, session_id)
        if not can_set_status(principal, session, access):
            raise Forbidden("Only the session's owner, an admin or the agent service may do that.")
        if session.status is status:
            return self._access.view_of(principal, session, access)
        now = self._clock.now()
        updated = await self._store.set_status(session.id, status, now)
        if updated is None:
            raise session_not_found(session_id)
        action = "session.completed" if status is SessionStatus.COMPLETED else "session.reopened"
        await self._store.append_audit(audit_event(principal, updated, action, now))
        await self._broker.publish(SessionUpdated(updated))
        return self._access.view_of(principal, updated, access)

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
                session, access = await self._access.load_managed(principal, session_id)
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
                    outcome.sessions.append(self._access.view_of(principal, changed, access))
        return outcome

    def chat_apps(self) -> list[ChatApp]:
        return self._chat_apps.all()

    # Helpers

    async def apply_retention(self) -> dict[str, int]:
        """Re-apply every chat app's retentionDays to its sessions (run at start, so that
        a changed setting reaches sessions written before it). Sessions per chat app."""
        return {
            app.id: await self._store.apply_retention(app.id, app.settings.retention_days)
            for app in self._chat_apps.all()
        }
