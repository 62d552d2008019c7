"""GraphQL input types."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from .enums import FeedbackKind, Grade, GranteeKind, ShareMode, ToolStatus, TurnRole


@strawberry.input
class CreateSessionInput:
    chat_app_id: strawberry.ID
    title: str | None = None
    tags: list[str] | None = None
    metadata: JSON | None = None
    agent_context: JSON | None = strawberry.field(
        default=None, description="System prompt, variables and memory the agent needs on resume."
    )
    on_behalf_of: strawberry.ID | None = strawberry.field(
        default=None, description="For a service: the user of its entity who owns the session."
    )
    template_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "Start from this template of the chat app: its system prompt and variables "
            "(agentContext given here wins) and its starter turns."
        ),
    )


@strawberry.input
class SendMessageInput:
    content: str
    session_id: strawberry.ID | None = strawberry.field(
        default=None, description="Leave out to start a new session with this message."
    )
    chat_app_id: strawberry.ID | None = strawberry.field(
        default=None, description="Needed when there is no sessionId."
    )
    parts: JSON | None = None
    metadata: JSON | None = None
    on_behalf_of: strawberry.ID | None = None


@strawberry.input
class ToolInvocationInput:
    name: str
    id: strawberry.ID | None = None
    input: JSON | None = None
    output: JSON | None = None
    status: ToolStatus = ToolStatus.SUCCEEDED
    error: str | None = None
    started_at: datetime | None = None
    duration_ms: float | None = None


@strawberry.input
class TokenUsageInput:
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0


@strawberry.input
class AppendTurnInput:
    session_id: strawberry.ID
    role: TurnRole = TurnRole.ASSISTANT
    content: str = ""
    parts: JSON | None = None
    tool_invocations: list[ToolInvocationInput] | None = None
    trace: JSON | None = None
    insights: JSON | None = None
    metadata: JSON | None = None
    usage: TokenUsageInput | None = None
    on_behalf_of: strawberry.ID | None = None


@strawberry.input
class VerificationInput:
    grade: Grade
    score: float | None = strawberry.field(default=None, description="Between 0 and 1.")
    notes: str | None = None


@strawberry.input
class FeedbackInput:
    kind: FeedbackKind
    comment: str | None = None


@strawberry.input
class SessionFilter:
    chat_app_ids: list[strawberry.ID] | None = None
    archived: bool | None = strawberry.field(
        default=False, description="false (default): active only; true: archived only; null: both."
    )
    tag: str | None = None
    all_owners: bool = strawberry.field(
        default=False,
        description="Auditors, entity admins and admins: every owner's sessions in the entity.",
    )


@strawberry.input
class ShareInput:
    session_id: strawberry.ID
    grantee_kind: GranteeKind
    mode: ShareMode = ShareMode.READ
    user_id: strawberry.ID | None = strawberry.field(
        default=None, description="The grantee, for USER and EXTERNAL shares."
    )
    entity_id: strawberry.ID | None = strawberry.field(
        default=None, description="The grantee's entity, for EXTERNAL shares."
    )
    expires_at: datetime | None = None


@strawberry.input
class AuditFilter:
    actor_id: strawberry.ID | None = None
    action: str | None = None
    session_id: strawberry.ID | None = None
    since: datetime | None = strawberry.field(default=None, name="from")
    until: datetime | None = strawberry.field(default=None, name="to")


@strawberry.input
class SearchFilter:
    chat_app_ids: list[strawberry.ID] | None = None
    since: datetime | None = strawberry.field(
        default=None, name="from", description="Turns at or after this time."
    )
    until: datetime | None = strawberry.field(
        default=None, name="to", description="Turns before this time."
    )
    participants: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Sessions in which any of these users of the caller's entity took part "
        "(a user of another entity with the same id is someone else).",
    )
    tags: list[str] | None = strawberry.field(default=None, description="Any of these tags.")
    include_archived: bool = False
    roles: list[TurnRole] | None = strawberry.field(
        default=None, description="Only turns of these roles match (titles then do not)."
    )


@strawberry.input(description="A turn a template puts at the start of a new session.")
class StarterTurnInput:
    role: TurnRole = strawberry.field(description="USER, ASSISTANT or SYSTEM.")
    content: str


@strawberry.input(description="A new session template of the caller's entity.")
class CreateTemplateInput:
    chat_app_id: strawberry.ID
    name: str = strawberry.field(description="Unique in the chat app for the entity.")
    description: str = ""
    system_prompt: str | None = None
    variables: JSON | None = strawberry.field(default=None, description="A JSON object.")
    starter_turns: list[StarterTurnInput] | None = None


@strawberry.input(
    description="A whole session template: updateTemplate replaces every field with these."
)
class TemplateInput:
    name: str
    description: str = ""
    system_prompt: str | None = None
    variables: JSON | None = strawberry.field(default=None, description="A JSON object.")
    starter_turns: list[StarterTurnInput] | None = None
