"""GraphQL types of a turn: its author, tool invocations, usage, grade and feedback, and
the connection of a session's turns."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from ..domain import models
from .enums import (
    FeedbackKind,
    Grade,
    ToolStatus,
    TurnRole,
)


@strawberry.type
class TokenUsage:
    input_tokens: int
    output_tokens: int
    cost: float

    @classmethod
    def of(cls, u: models.TokenUsage) -> TokenUsage:
        return cls(input_tokens=u.input_tokens, output_tokens=u.output_tokens, cost=u.cost)


@strawberry.type
class ToolInvocation:
    id: strawberry.ID
    name: str
    input: JSON | None
    output: JSON | None
    status: ToolStatus
    error: str | None
    started_at: datetime | None
    duration_ms: float | None


@strawberry.type(
    description="Someone who took part in a session. A user id names a person only within "
    "its entity: acme's bob and globex's bob are two people."
)
class Person:
    user_id: strawberry.ID = strawberry.field(
        description="`external` for someone whose identity the caller is not shown."
    )
    entity_id: strawberry.ID | None = strawberry.field(
        description="Null for someone of a third entity: a guest of another entity than "
        "the session's and the caller's is shown to a guest without user id or entity."
    )
    external: bool = strawberry.field(
        description="Of another entity than the session's: an external grantee."
    )

    @classmethod
    def of(cls, person: models.Person, session_entity_id: str) -> Person:
        return cls(
            user_id=strawberry.ID(person.user_id),
            entity_id=None if person.entity_id is None else strawberry.ID(person.entity_id),
            external=person.entity_id != session_entity_id,
        )


@strawberry.type
class Verification:
    grade: Grade
    score: float | None
    notes: str | None
    verified_at: datetime
    verified_by: strawberry.ID = strawberry.field(
        description="The verifier's user id; `verifier` says of which entity."
    )
    verifier: Person


@strawberry.type
class Feedback:
    user_id: strawberry.ID = strawberry.field(
        description="The user id of whoever gave it; `givenBy` says of which entity."
    )
    given_by: Person = strawberry.field(
        description="Who gave it: each person keeps one feedback of each kind per turn."
    )
    kind: FeedbackKind
    comment: str | None
    at: datetime


@strawberry.type
class Turn:
    id: strawberry.ID
    session_id: strawberry.ID
    seq: int
    role: TurnRole
    author_id: strawberry.ID = strawberry.field(
        description="The author's user id; `author` says of which entity."
    )
    author: Person
    content: str
    parts: JSON | None
    tool_invocations: list[ToolInvocation]
    trace: JSON | None
    verification: Verification | None
    feedback: list[Feedback]
    insights: JSON | None
    metadata: JSON | None
    usage: TokenUsage
    created_at: datetime

    @classmethod
    def of(cls, t: models.Turn) -> Turn:
        v = t.verification
        return cls(
            id=strawberry.ID(t.id),
            session_id=strawberry.ID(t.session_id),
            seq=t.seq,
            role=t.role,
            author_id=strawberry.ID(t.author_id),
            author=Person.of(t.author, t.entity_id),
            content=t.content,
            parts=t.parts,
            tool_invocations=[
                ToolInvocation(
                    id=strawberry.ID(i.id),
                    name=i.name,
                    input=i.input,
                    output=i.output,
                    status=i.status,
                    error=i.error,
                    started_at=i.started_at,
                    duration_ms=i.duration_ms,
                )
                for i in t.tool_invocations
            ],
            trace=t.trace,
            verification=None
            if v is None
            else Verification(
                grade=v.grade,
                score=v.score,
                notes=v.notes,
                verified_at=v.verified_at,
                verified_by=strawberry.ID(v.verified_by),
                verifier=Person.of(v.verifier, t.entity_id),
            ),
            feedback=[
                Feedback(
                    user_id=strawberry.ID(f.user_id),
                    given_by=Person.of(f.given_by, t.entity_id),
                    kind=f.kind,
                    comment=f.comment,
                    at=f.at,
                )
                for f in t.feedback
            ],
            insights=t.insights,
            metadata=t.metadata,
            usage=TokenUsage.of(t.usage),
            created_at=t.created_at,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, cursors: list[str], *, has_next: bool, has_previous: bool) -> PageInfo:
        """The page's info from the cursors of its edges, in order."""
        return cls(
            has_next_page=has_next,
            has_previous_page=has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        )


@strawberry.type
class TurnEdge:
    cursor: str
    node: Turn


@strawberry.type
class TurnConnection:
    edges: list[TurnEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Turns in the whole session.")

    @strawberry.field(description="The nodes of `edges`, oldest first.")
    def nodes(self) -> list[Turn]:
        return [edge.node for edge in self.edges]
