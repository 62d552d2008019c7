"""Full-text search across sessions, scoped to what the caller may read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .access import SessionAccess, SessionView
from .clock import Clock
from .errors import InvalidInput
from .models import GranteeScope, Principal, UserType
from .pagination import decode_cursor, encode_cursor, page_size
from .policy import sees_whole_entity
from .ports import Store
from .query import (
    SearchCursor,
    SearchFilter,
    SearchOrder,
    SearchRequest,
    SearchScope,
    SessionHit,
    parse_query,
)


@dataclass(slots=True)
class SearchResult:
    view: SessionView
    hit: SessionHit
    cursor: SearchCursor


@dataclass(slots=True)
class SearchPage:
    results: list[SearchResult]
    has_next: bool


MAX_SHARED_IN_SCOPE = 1000


async def search_scope(store: Store, principal: Principal, now: datetime) -> SearchScope:
    """What `principal` may search: their own sessions, or the whole entity for those who
    oversee it, and (up to MAX_SHARED_IN_SCOPE) the sessions others shared with them."""
    shared = await store.list_shared_with(
        GranteeScope(
            principal.entity_id, principal.user_id, principal.user_type is UserType.INTERNAL
        ),
        now,
        None,
        MAX_SHARED_IN_SCOPE,
    )
    whole_entity = sees_whole_entity(principal)
    return SearchScope(
        entity_id=principal.entity_id,
        owner_id=None if whole_entity else principal.user_id,
        # The entity's own sessions are in an entity-wide scope already; naming them again
        # would only lengthen the index query.
        shared_session_ids=tuple(
            s.id for s, _ in shared if not (whole_entity and s.entity_id == principal.entity_id)
        ),
    )


class SearchService:
    def __init__(self, store: Store, access: SessionAccess, clock: Clock) -> None:
        self._store = store
        self._access = access
        self._clock = clock

    async def search(
        self,
        principal: Principal,
        text: str,
        search_filter: SearchFilter,
        order: SearchOrder,
        first: int | None,
        after: str | None,
    ) -> SearchPage:
        query = parse_query(text)
        limit = page_size(first, 20)
        cursor = decode_search_cursor(after) if after else None
        if (
            search_filter.since is not None
            and search_filter.until is not None
            and search_filter.since >= search_filter.until
        ):
            raise InvalidInput("'from' must be before 'to'.")
        scope = await search_scope(self._store, principal, self._clock.now())
        results: list[SearchResult] = []
        exhausted = False
        # The index found hits within scope; the policy has the last word. Hits it drops
        # must not shorten or end the page, so scan on until the page is full.
        while len(results) <= limit and not exhausted:
            hits = await self._store.search(
                SearchRequest(query, scope, search_filter, order, cursor, limit + 1)
            )
            exhausted = len(hits) <= limit
            for hit in hits:
                cursor = SearchCursor(hit.sort_key, hit.session.id)
                view = await self._access.find_quietly(principal, hit.session)
                if view is not None:
                    results.append(SearchResult(view, hit, cursor))
                    if len(results) > limit:
                        break
        return SearchPage(results[:limit], len(results) > limit)


def encode_search_cursor(cursor: SearchCursor) -> str:
    return encode_cursor("q", [cursor.score, cursor.session_id])


def decode_search_cursor(text: str) -> SearchCursor:
    match decode_cursor("q", text):
        case [int() | float() as score, str(session_id)] if abs(score) < 1e300:
            return SearchCursor(float(score), session_id)
    raise InvalidInput(f"The cursor {text!r} is not one this server handed out.")
