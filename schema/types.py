"""GraphQL types of the caller and of sessions (the other object types are in a module per
area: chat_apps, turns, context, sharing, audit, search, reports). Built from domain
objects; fields that need data beyond the
object itself (a session's turns, its LLM context) delegate to the services in the
request context."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from ..domain import models
from ..domain.access import SessionView
from ..domain.pagination import decode_turn_cursor, encode_turn_cursor
from .chat_apps import ChatApp
from .context import AgentContext
from .enums import (
    ContextFormat,
    DateGroup,
    ExportFormat,
    ItemStatus,
    Role,
    SessionStatus,
    TitleSource,
    UserType,
)
from .sharing import Share
from .turns import (
    PageInfo,
    Person,
    TokenUsage,
    Turn,
    TurnConnection,
    TurnEdge,
)


@strawberry.type(description="Who is calling, as the token says.")
class Principal:
    user_id: strawberry.ID
    entity_id: strawberry.ID
    user_type: UserType
    roles: list[Role]
    time_zone: str | None

    @classmethod
    def of(cls, p: models.Principal) -> Principal:
        return cls(
            user_id=strawberry.ID(p.user_id),
            entity_id=strawberry.ID(p.entity_id),
            user_type=p.user_type,
            roles=sorted(p.roles, key=lambda r: r.name),
            time_zone=p.time_zone,
        )


PARTICIPANTS = (
    "Users of the session's entity who took part, in the order they first did (people of "
    "other entities are in `people`)."
)
PEOPLE = "Everyone who took part: the session's entity's users, then external grantees."


def shared_session_fields(s: models.Session) -> dict[str, Any]:
    """The fields every reader of a session sees alike: the Session type's and, in live
    events, SessionInfo's."""
    return {
        "id": strawberry.ID(s.id),
        "chat_app_id": strawberry.ID(s.chat_app_id),
        "owner_id": strawberry.ID(s.owner_id),
        "title": s.title or "Untitled",
        "title_source": s.title_source,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "last_activity_at": s.last_activity_at,
        "turn_count": s.turn_count,
        "archived": s.archived_at is not None,
        "archived_at": s.archived_at,
        "tags": list(s.tags),
        "participants": [strawberry.ID(p) for p in s.participants],
        "people": [Person.of(p, s.entity_id) for p in s.people],
        "status": s.status,
        "template_id": strawberry.ID(s.template_id) if s.template_id else None,
        "metadata": s.metadata,
        "expires_at": s.expires_at,
        "usage": TokenUsage.of(s.usage),
    }


@strawberry.type(
    description="What every reader of a session sees alike: the fields of `Session` and, in "
    "live events, of `SessionInfo`."
)
class SessionFacts:
    id: strawberry.ID
    chat_app_id: strawberry.ID
    owner_id: strawberry.ID
    title: str = strawberry.field(description="The title, or 'Untitled' while there is none.")
    title_source: TitleSource
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    turn_count: int
    archived: bool
    archived_at: datetime | None
    tags: list[str]
    participants: list[strawberry.ID] = strawberry.field(description=PARTICIPANTS)
    people: list[Person] = strawberry.field(description=PEOPLE)
    status: SessionStatus
    template_id: strawberry.ID | None
    metadata: JSON | None
    expires_at: datetime | None
    usage: TokenUsage


@strawberry.type
class Session(SessionFacts):
    view: strawberry.Private[SessionView]
    agent_context: JSON | None

    @classmethod
    def of(cls, view: SessionView) -> Session:
        s = view.session
        return cls(
            view=view,
            agent_context=s.agent_context,
            **shared_session_fields(s),
        )

    @strawberry.field(graphql_type=bool, description="Pinned by the caller (pins are per user).")
    def pinned(self, info: Info) -> Awaitable[bool] | bool:
        # A plain value when the listing that found the session knew it; graphql-core
        # awaits the look-up otherwise.
        if self.view.pinned is not None:
            return self.view.pinned
        return info.context.services.sessions.is_pinned(info.context.require_principal(), self.id)

    @strawberry.field
    def chat_app(self) -> ChatApp | None:
        return ChatApp.of(self.view.chat_app) if self.view.chat_app else None

    @strawberry.field(
        description=(
            "Turns in seq order. `last`/`before` page backwards from the newest turn (the "
            "default, 50 at a time); `first`/`after` page forwards from the oldest."
        )
    )
    async def turns(
        self,
        info: Info,
        last: int | None = None,
        before: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> TurnConnection:
        page = await info.context.services.sessions.turns(
            self.view,
            first=first,
            after_seq=decode_turn_cursor(after) if after else None,
            last=last,
            before_seq=decode_turn_cursor(before) if before else None,
        )
        edges = [TurnEdge(cursor=encode_turn_cursor(t.seq), node=Turn.of(t)) for t in page.turns]
        return TurnConnection(
            edges=edges,
            page_info=PageInfo.of(
                [e.cursor for e in edges],
                has_next=page.has_more_after,
                has_previous=page.has_more_before,
            ),
            total_count=self.view.session.turn_count,
        )

    @strawberry.field(
        description="Every share of the session for its owner, admins, auditors and entity "
        "admins; otherwise the caller's own grants."
    )
    async def shares(self, info: Info) -> list[Share]:
        principal = info.context.require_principal()
        shares = await info.context.services.sharing.shares_of(principal, self.view)
        now = info.context.services.clock.now()
        return [Share.of(s, now) for s in shares]

    @strawberry.field(
        description="The history as LLM-ready messages, at most the chat app's maxSessionHistory."
    )
    async def context(
        self,
        info: Info,
        max_turns: int | None = None,
        format: ContextFormat = ContextFormat.OPENAI_CHAT,
    ) -> AgentContext:
        context = await info.context.services.sessions.context(self.view, max_turns)
        return AgentContext.of(context, format)


@strawberry.type
class SessionEdge:
    cursor: str
    node: Session
    date_group: DateGroup


@strawberry.type
class SessionConnection:
    edges: list[SessionEdge]
    page_info: PageInfo


@strawberry.type
class SendMessagePayload:
    session: Session
    turn: Turn
    created_session: bool = strawberry.field(description="True when this message started it.")


@strawberry.type
class ItemResult:
    id: strawberry.ID
    status: ItemStatus
    message: str | None


@strawberry.type(description="What an operation on many sessions did, id by id.")
class BulkResult:
    results: list[ItemResult] = strawberry.field(
        description="One outcome per distinct id asked for, in the order given."
    )
    sessions: list[Session] = strawberry.field(
        description="The sessions as they are after the change (DONE ids; none for deletes)."
    )


@strawberry.type(description="One of the caller's tags and how many of their sessions carry it.")
class TagCount:
    tag: str
    count: int


@strawberry.type(description="A document of the exported sessions.")
class Export:
    format: ExportFormat
    file_name: str
    media_type: str
    content_base64: str = strawberry.field(description="The document's bytes, base64-encoded.")
    text: str | None = strawberry.field(description="The document itself for MARKDOWN and JSON.")
    results: list[ItemResult] = strawberry.field(description="One outcome per id asked for.")
