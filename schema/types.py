"""GraphQL object types. Built from domain objects; fields that need data beyond the
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
from ..domain.context import AgentContext as DomainAgentContext
from ..domain.pagination import decode_turn_cursor, encode_turn_cursor
from .enums import (
    DateGroup,
    ExportFormat,
    FeedbackKind,
    Grade,
    GranteeKind,
    ItemStatus,
    Role,
    SessionStatus,
    ShareMode,
    TemplateSource,
    TitleSource,
    ToolStatus,
    TurnRole,
    UserType,
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


@strawberry.type
class SessionSettings:
    auto_generate_titles: bool
    allow_sharing: bool
    allow_external_sharing: bool
    allow_pinning: bool
    max_session_history: int = strawberry.field(description="Most turns a session may hold.")
    retention_days: int
    agent_turns_from_collaborators: bool = strawberry.field(
        description="People of the session's entity other than its owner who interact with "
        "it may append ASSISTANT and TOOL turns too. Off: USER turns only, as for everyone "
        "outside the entity; SYSTEM turns are the owner's and the agent service's alone."
    )


@strawberry.type
class ChatApp:
    id: strawberry.ID
    name: str
    description: str
    settings: SessionSettings

    @classmethod
    def of(cls, app: models.ChatApp) -> ChatApp:
        s = app.settings
        return cls(
            id=strawberry.ID(app.id),
            name=app.name,
            description=app.description,
            settings=SessionSettings(
                auto_generate_titles=s.auto_generate_titles,
                allow_sharing=s.allow_sharing,
                allow_external_sharing=s.allow_external_sharing,
                allow_pinning=s.allow_pinning,
                max_session_history=s.max_session_history,
                retention_days=s.retention_days,
                agent_turns_from_collaborators=s.agent_turns_from_collaborators,
            ),
        )


@strawberry.type(description="A turn a template puts at the start of a new session.")
class StarterTurn:
    role: TurnRole
    content: str


@strawberry.type(description="A ready-made start for a session of one chat app.")
class SessionTemplate:
    id: strawberry.ID
    chat_app_id: strawberry.ID
    name: str
    description: str
    system_prompt: str | None
    variables: JSON | None
    starter_turns: list[StarterTurn]
    source: TemplateSource
    updated_at: datetime | None = strawberry.field(
        description="When an admin last changed it; null for the chat apps file's."
    )

    @classmethod
    def of(
        cls,
        chat_app_id: str,
        template: models.SessionTemplate,
        source: TemplateSource = TemplateSource.CHAT_APPS_FILE,
        updated_at: datetime | None = None,
    ) -> SessionTemplate:
        return cls(
            id=strawberry.ID(template.id),
            chat_app_id=strawberry.ID(chat_app_id),
            name=template.name,
            description=template.description,
            system_prompt=template.system_prompt,
            variables=template.variables,
            starter_turns=[
                StarterTurn(role=t.role, content=t.content) for t in template.starter_turns
            ],
            source=source,
            updated_at=updated_at,
        )

    @classmethod
    def of_entity(cls, stored: models.EntityTemplate) -> SessionTemplate:
        return cls.of(stored.chat_app_id, stored.template, TemplateSource.ENTITY, stored.updated_at)


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


@strawberry.type
class ToolCall:
    id: strawberry.ID
    name: str
    arguments: str = strawberry.field(description="The tool input as a JSON string.")


@strawberry.type(description="One message of an LLM chat-completions request.")
class ContextMessage:
    role: str
    content: str
    tool_calls: list[ToolCall]
    tool_call_id: str | None
    name: str | None = strawberry.field(
        description="The tool's name on a tool message; on a collaborator's user message the "
        "participant name (letters, digits, _ and -) to pass as the message's `name`."
    )
    seq: int | None = strawberry.field(description="The turn this message comes from.")
    author: Person | None = strawberry.field(
        description="Who wrote that turn (none for the system prompt); `external` when of "
        "another entity than the session's."
    )
    collaborator: bool = strawberry.field(
        description="A user message written by someone other than the session's owner (a "
        "grantee, an admin, a service as itself); its content starts with a line saying so."
    )


@strawberry.type(description="What an agent needs to resume the session.")
class AgentContext:
    messages: list[ContextMessage]
    system_prompt: str | None
    variables: JSON | None
    turn_count: int
    included_turns: int
    truncated: bool = strawberry.field(description="True when older turns were left out.")

    @classmethod
    def of(cls, c: DomainAgentContext) -> AgentContext:
        return cls(
            messages=[
                ContextMessage(
                    role=m.role,
                    content=m.content,
                    tool_calls=[
                        ToolCall(id=strawberry.ID(t.id), name=t.name, arguments=t.arguments)
                        for t in m.tool_calls
                    ],
                    tool_call_id=m.tool_call_id,
                    name=m.name,
                    seq=m.seq,
                    author=None
                    if m.author is None
                    else Person(
                        user_id=strawberry.ID(m.author.user_id),
                        entity_id=None
                        if m.author.entity_id is None
                        else strawberry.ID(m.author.entity_id),
                        external=m.external_author,
                    ),
                    collaborator=m.collaborator,
                )
                for m in c.messages
            ],
            system_prompt=c.system_prompt,
            variables=c.variables,
            turn_count=c.turn_count,
            included_turns=c.included_turns,
            truncated=c.truncated,
        )


@strawberry.type
class Share:
    id: strawberry.ID
    session_id: strawberry.ID
    grantee_kind: GranteeKind
    grantee_entity_id: strawberry.ID | None
    grantee_user_id: strawberry.ID | None
    mode: ShareMode
    created_by: strawberry.ID
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: strawberry.ID | None
    live: bool
    link_token: str | None = strawberry.field(
        description="For a LINK share, the token to pass to sessionByShareLink. Given once, "
        "in the answer to shareSession; only its hash is kept."
    )

    @classmethod
    def of(cls, share: models.Share, now: datetime, link_token: str | None = None) -> Share:
        return cls(
            id=strawberry.ID(share.id),
            session_id=strawberry.ID(share.session_id),
            grantee_kind=share.grantee_kind,
            grantee_entity_id=_opt_id(share.grantee_entity_id),
            grantee_user_id=_opt_id(share.grantee_user_id),
            mode=share.mode,
            created_by=strawberry.ID(share.created_by),
            created_at=share.created_at,
            expires_at=share.expires_at,
            revoked_at=share.revoked_at,
            revoked_by=_opt_id(share.revoked_by),
            live=share.is_live(now),
            link_token=link_token,
        )


def _opt_id(value: str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(value)


@strawberry.type
class AuditEvent:
    id: strawberry.ID
    actor_id: strawberry.ID
    action: str
    target: str
    at: datetime
    details: JSON | None

    @classmethod
    def of(cls, event: models.AuditEvent) -> AuditEvent:
        return cls(
            id=strawberry.ID(event.id),
            actor_id=strawberry.ID(event.actor_id),
            action=event.action,
            target=event.target,
            at=event.at,
            details=event.details,
        )


@strawberry.type
class AuditEdge:
    cursor: str
    node: AuditEvent


@strawberry.type
class AuditConnection:
    edges: list[AuditEdge]
    page_info: PageInfo


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
        return info.context.sessions.is_pinned(info.context.require_principal(), self.id)

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
        page = await info.context.sessions.turns(
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
        shares = await info.context.sharing.shares_of(principal, self.view)
        now = info.context.clock.now()
        return [Share.of(s, now) for s in shares]

    @strawberry.field(
        description="The history as LLM-ready messages, at most the chat app's maxSessionHistory."
    )
    async def context(self, info: Info, max_turns: int | None = None) -> AgentContext:
        return AgentContext.of(await info.context.sessions.context(self.view, max_turns))


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


@strawberry.type(
    description="What retention removed (or, in a dry run, would remove) of one chat app."
)
class ChatAppRetention:
    chat_app_id: strawberry.ID
    removed: int
    turns: int


@strawberry.type(description="Sessions past their retention, removed for good with their turns.")
class RetentionReport:
    dry_run: bool
    removed: int
    turns: int
    chat_apps: list[ChatAppRetention]


@strawberry.type(
    description="What eraseUserData removed of one person of the caller's entity, in any "
    "session they took part in. "
    "Audit events stay, with their personal content removed; `auditEventId` is the "
    "user.erased event that records this erasure."
)
class ErasureReport:
    user_id: strawberry.ID
    erased_at: datetime
    audit_event_id: strawberry.ID
    sessions: int = strawberry.field(description="Sessions they owned, deleted.")
    session_turns: int = strawberry.field(description="Turns those sessions held.")
    authored_turns: int = strawberry.field(
        description="Their turns in other people's sessions, emptied in place."
    )
    feedback: int = strawberry.field(description="Turns that lost their feedback.")
    pins: int
    shares: int = strawberry.field(description="Shares granted to them, removed.")
    link_visits: int = strawberry.field(description="Share links they had opened.")
    participations: int = strawberry.field(
        description="Other sessions that no longer list them as a participant."
    )
    titles: int = strawberry.field(
        description="Other sessions whose generated title was taken back, as it may have been "
        "made from their words: made again from the turns left."
    )
    audit_events: int = strawberry.field(
        description="Audit events whose details lost their personal content."
    )
