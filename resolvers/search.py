"""searchSessions: full-text search over what the caller may read."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_field
from ..domain.models import Person
from ..domain.query import SearchFilter as DomainSearchFilter
from ..domain.search import encode_search_cursor
from ..schema.enums import SearchOrder
from ..schema.inputs import SearchFilter
from ..schema.search import SearchConnection, SearchEdge, SearchHit, TurnMatch
from ..schema.turns import PageInfo
from ..schema.types import Session
from .context import Context
from .roles import PEOPLE


async def _search_sessions(
    info: Info[Context, None],
    query: str,
    filter: SearchFilter | None = None,
    order_by: SearchOrder = SearchOrder.RELEVANCE,
    first: int | None = 20,
    after: str | None = None,
) -> SearchConnection:
    f = filter or SearchFilter()
    principal = info.context.require_principal()
    page = await info.context.services.search.search(
        principal,
        query,
        DomainSearchFilter(
            chat_app_ids=tuple(f.chat_app_ids or ()),
            since=f.since,
            until=f.until,
            # The ids name users of the caller's entity: never someone of another entity
            # who happens to have the same id.
            participants=tuple(Person(principal.entity_id, p) for p in f.participants or ()),
            tags=tuple(t.strip().lower() for t in f.tags or ()),
            include_archived=f.include_archived,
            roles=tuple(f.roles or ()),
        ),
        order_by,
        first,
        after,
    )
    edges = [
        SearchEdge(
            cursor=encode_search_cursor(r.cursor),
            node=SearchHit(
                session=Session.of(r.view),
                score=r.hit.score,
                title_snippet=r.hit.title_snippet,
                turns=[
                    TurnMatch(
                        turn_id=strawberry.ID(t.turn_id), seq=t.seq, role=t.role, snippet=t.snippet
                    )
                    for t in r.hit.turns
                ],
            ),
        )
        for r in page.results
    ]
    return SearchConnection(
        edges=edges,
        page_info=PageInfo.of(
            [e.cursor for e in edges], has_next=page.has_next, has_previous=after is not None
        ),
    )


@strawberry.type
class SearchQueries:
    search_sessions: SearchConnection = auth_field(
        _search_sessions,
        requires=PEOPLE,
        description='Words (all must match), "phrases", prefix*, -excluded; accents and case '
        "do not matter. Hits are grouped by session, best turns first.",
    )
