"""GraphQL enums, exposing the domain's enums by name."""

from __future__ import annotations

import enum

import strawberry

from ..domain import models
from ..domain.bulk import ItemStatus
from ..domain.context_formats import ContextFormat
from ..domain.dates import DateGroup
from ..domain.documents import ExportFormat
from ..domain.query import SearchOrder
from ..domain.templates import TemplateSource

Role = models.Role
UserType = models.UserType
TitleSource = models.TitleSource
SessionStatus = models.SessionStatus
TurnRole = models.TurnRole
ToolStatus = models.ToolStatus
Grade = models.Grade
FeedbackKind = models.FeedbackKind
GranteeKind = models.GranteeKind
ShareMode = models.ShareMode

# strawberry.enum marks the class itself (and returns it): the domain's enums are the
# GraphQL enums, and the names above are plain aliases that type checkers understand.
_DESCRIPTIONS: dict[type[enum.Enum], str | None] = {
    Role: "What a principal may do beyond its own sessions.",
    UserType: None,
    TitleSource: "PENDING until a title exists; AUTO when generated; MANUAL when a person set it.",
    SessionStatus: None,
    TurnRole: None,
    ToolStatus: None,
    Grade: None,
    FeedbackKind: None,
    DateGroup: "Where a session falls in a sidebar.",
    GranteeKind: "USER: a user of the entity; ENTITY: everyone in it; EXTERNAL: a user of "
    "another entity; LINK: whoever opens the link.",
    ShareMode: "READ: read, search, export. INTERACT: also send and give feedback.",
    ExportFormat: None,
    ItemStatus: "The outcome for one id of an operation on many sessions.",
    SearchOrder: None,
    ContextFormat: "The LLM API whose request `AgentContext.request` is shaped for: OpenAI "
    "Chat Completions (`messages`) or Anthropic Messages (`system`, `messages`).",
    TemplateSource: "CHAT_APPS_FILE: from the chat apps file, every entity's, read-only over the "
    "API. ENTITY: defined by an admin of the caller's entity, which alone sees it.",
}
for _exposed, _description in _DESCRIPTIONS.items():
    strawberry.enum(_exposed, description=_description)
