"""GraphQL enums, exposing the domain's enums by name."""

from __future__ import annotations

import strawberry

from ..domain import models
from ..domain.bulk import ItemStatus as _ItemStatus
from ..domain.dates import DateGroup as _DateGroup
from ..domain.documents import ExportFormat as _ExportFormat
from ..domain.query import SearchOrder as _SearchOrder
from ..domain.templates import TemplateSource as _TemplateSource

Role = strawberry.enum(models.Role, description="What a principal may do beyond its own sessions.")
UserType = strawberry.enum(models.UserType)
TitleSource = strawberry.enum(
    models.TitleSource,
    description="PENDING until a title exists; AUTO when generated; MANUAL when a person set it.",
)
SessionStatus = strawberry.enum(models.SessionStatus)
TurnRole = strawberry.enum(models.TurnRole)
ToolStatus = strawberry.enum(models.ToolStatus)
Grade = strawberry.enum(models.Grade)
FeedbackKind = strawberry.enum(models.FeedbackKind)
DateGroup = strawberry.enum(_DateGroup, description="Where a session falls in a sidebar.")
GranteeKind = strawberry.enum(
    models.GranteeKind,
    description="USER: a user of the entity; ENTITY: everyone in it; EXTERNAL: a user of "
    "another entity; LINK: whoever opens the link.",
)
ShareMode = strawberry.enum(
    models.ShareMode,
    description="READ: read, search, export. INTERACT: also send and give feedback.",
)
ExportFormat = strawberry.enum(_ExportFormat)
ItemStatus = strawberry.enum(
    _ItemStatus, description="The outcome for one id of an operation on many sessions."
)
SearchOrder = strawberry.enum(_SearchOrder)
TemplateSource = strawberry.enum(
    _TemplateSource,
    description="CHAT_APPS_FILE: from the chat apps file, every entity's, read-only over the "
    "API. ENTITY: defined by an admin of the caller's entity, which alone sees it.",
)
