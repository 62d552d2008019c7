"""GraphQL types of search results: sessions with the turns that matched."""

from __future__ import annotations

import strawberry

from .enums import (
    TurnRole,
)
from .turns import (
    PageInfo,
)
from .types import Session


@strawberry.type
class TurnMatch:
    turn_id: strawberry.ID
    seq: int
    role: TurnRole
    snippet: str = strawberry.field(
        description="HTML-escaped text around the match, matched words in <mark>."
    )


@strawberry.type
class SearchHit:
    session: Session
    score: float = strawberry.field(
        description="Relevance (BM25-like, of the best matching row): lower is better."
    )
    title_snippet: str | None = strawberry.field(
        description="The title with matched words in <mark>, when the title matched."
    )
    turns: list[TurnMatch] = strawberry.field(description="The best matching turns.")


@strawberry.type
class SearchEdge:
    cursor: str
    node: SearchHit


@strawberry.type
class SearchConnection:
    edges: list[SearchEdge]
    page_info: PageInfo
