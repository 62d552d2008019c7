"""GraphQL types of chat apps and their session templates."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from ..domain import models
from .enums import (
    TemplateSource,
    TurnRole,
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
    languages: list[str] = strawberry.field(
        description="The languages the app's chats are in (ISO 639-1): search stems each "
        "turn in the only one, or in the one detected among them. Empty: detected among "
        "every language search can stem."
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
                languages=list(s.languages),
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
