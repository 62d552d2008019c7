"""What callers ask the services to do, already free of any API types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .models import JSON, FeedbackKind, Grade, TokenUsage, ToolStatus, TurnRole


@dataclass(slots=True)
class CreateSession:
    chat_app_id: str
    title: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: JSON = None
    agent_context: JSON = None
    on_behalf_of: str | None = None
    template_id: str | None = None


@dataclass(slots=True)
class SendMessage:
    content: str
    session_id: str | None = None
    chat_app_id: str | None = None
    parts: JSON = None
    metadata: JSON = None
    on_behalf_of: str | None = None


@dataclass(slots=True)
class ToolInvocationInput:
    name: str
    id: str | None = None
    input: JSON = None
    output: JSON = None
    status: ToolStatus = ToolStatus.SUCCEEDED
    error: str | None = None
    started_at: datetime | None = None
    duration_ms: float | None = None


@dataclass(slots=True)
class AppendTurn:
    session_id: str
    role: TurnRole = TurnRole.ASSISTANT
    content: str = ""
    parts: JSON = None
    tool_invocations: list[ToolInvocationInput] = field(default_factory=list)
    trace: JSON = None
    insights: JSON = None
    metadata: JSON = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    on_behalf_of: str | None = None


@dataclass(slots=True)
class SetVerification:
    grade: Grade
    score: float | None = None
    notes: str | None = None


@dataclass(slots=True)
class AddFeedback:
    kind: FeedbackKind
    comment: str | None = None


@dataclass(slots=True)
class DefineTemplate:
    """A whole session template as an admin gives it, for creating or replacing one."""

    name: str
    description: str = ""
    system_prompt: str | None = None
    variables: JSON = None
    starter_turns: list[tuple[TurnRole, str]] = field(default_factory=list)
