"""Session templates: those of the chat apps file, which every entity sees, and those an
entity's admins define over the API, which only that entity sees or uses.

Another entity's template answers exactly as a missing one (NOT_FOUND), so nobody learns
that it exists. The file's templates are read-only here: they change with the file.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from . import validation as check
from .audit import template_audit_event
from .chat_apps import ChatApps
from .clock import Clock, new_id
from .commands import DefineTemplate
from .errors import Conflict, Forbidden, InvalidInput, LimitExceeded, NotFound
from .models import (
    ChatApp,
    EntityTemplate,
    Principal,
    SessionTemplate,
    StarterTurn,
    TurnRole,
    template_name_key,
)
from .policy import can_define_templates
from .ports import Store

STARTER_ROLES = (TurnRole.USER, TurnRole.ASSISTANT, TurnRole.SYSTEM)


class TemplateSource(enum.StrEnum):
    CHAT_APPS_FILE = "CHAT_APPS_FILE"
    ENTITY = "ENTITY"


@dataclass(slots=True)
class TemplateList:
    """What a chat app offers one entity: the file's templates in file order, then the
    entity's own by name."""

    chat_app: ChatApp
    from_file: list[SessionTemplate]
    of_entity: list[EntityTemplate]


def template_not_found(template_id: str) -> NotFound:
    return NotFound(f"Template {template_id!r} was not found.")


async def find_template(
    store: Store, principal: Principal, chat_app: ChatApp, template_id: str
) -> SessionTemplate | None:
    """The template a new session of `chat_app` may start from: the file's, or one the
    caller's entity defined for that chat app. None for anything else."""
    from_file = chat_app.template(template_id)
    if from_file is not None:
        return from_file
    stored = await store.get_template(principal.entity_id, template_id)
    if stored is None or stored.chat_app_id != chat_app.id:
        return None
    return stored.template


class TemplateService:
    def __init__(
        self,
        store: Store,
        chat_apps: ChatApps,
        clock: Clock,
        limits: check.Limits | None = None,
    ) -> None:
        self._store = store
        self._chat_apps = chat_apps
        self._clock = clock
        self._limits = limits or check.Limits()

    async def list(self, principal: Principal, chat_app_id: str) -> TemplateList:
        """Every authenticated caller sees the chat app's templates for its own entity."""
        chat_app = self._chat_app(chat_app_id)
        own = await self._store.list_templates(principal.entity_id, chat_app.id)
        return TemplateList(chat_app, list(chat_app.templates), own)

    async def create(
        self, principal: Principal, chat_app_id: str, definition: DefineTemplate
    ) -> EntityTemplate:
        self._require_admin(principal)
        chat_app = self._chat_app(chat_app_id)
        template = self._validated(new_id(), definition, chat_app)
        # Checked before the insert, so concurrent creates may pass it by a few; it bounds
        # the unpaged listing, which a few more never break.
        existing = await self._store.list_templates(principal.entity_id, chat_app.id)
        if len(existing) >= self._limits.max_templates_per_chat_app:
            raise LimitExceeded(
                f"Your entity already has {len(existing)} templates in chat app "
                f"{chat_app.id!r}, the most allowed; delete one first."
            )
        now = self._clock.now()
        created = EntityTemplate(
            entity_id=principal.entity_id,
            chat_app_id=chat_app.id,
            template=template,
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        audit = template_audit_event(
            principal, created, "template.created", now, chatAppId=chat_app.id, name=template.name
        )
        try:
            await self._store.create_template(created, audit)
        except Conflict as exc:
            raise _name_taken(template.name, chat_app.id) from exc
        return created

    async def update(
        self, principal: Principal, template_id: str, definition: DefineTemplate
    ) -> EntityTemplate:
        """Replace the whole template (its id, chat app and creation stay)."""
        self._require_admin(principal)
        current = await self._own(principal, template_id)
        chat_app = self._chat_apps.get(current.chat_app_id)
        template = self._validated(current.id, definition, chat_app)
        now = self._clock.now()
        updated = replace(current, template=template, updated_at=now)
        details: dict[str, str] = {"chatAppId": current.chat_app_id, "name": template.name}
        if template.name != current.template.name:
            details["previousName"] = current.template.name
        audit = template_audit_event(principal, updated, "template.updated", now, **details)
        try:
            changed = await self._store.update_template(updated, audit)
        except Conflict as exc:
            raise _name_taken(template.name, current.chat_app_id) from exc
        if not changed:  # deleted since we read it
            raise template_not_found(template_id)
        return updated

    async def delete(self, principal: Principal, template_id: str) -> None:
        """Sessions started from the template keep its id, context and turns."""
        self._require_admin(principal)
        current = await self._own(principal, template_id)
        now = self._clock.now()
        audit = template_audit_event(
            principal,
            current,
            "template.deleted",
            now,
            chatAppId=current.chat_app_id,
            name=current.template.name,
        )
        if not await self._store.delete_template(principal.entity_id, current.id, audit):
            raise template_not_found(template_id)

    # Helpers

    def _require_admin(self, principal: Principal) -> None:
        if not can_define_templates(principal):
            raise Forbidden("Only an admin of the entity may define session templates.")

    async def _own(self, principal: Principal, template_id: str) -> EntityTemplate:
        """The caller's entity's template; a file template is refused by name, anything
        else (another entity's included) is NOT_FOUND."""
        check.identifier(template_id, self._limits, "template id")
        stored = await self._store.get_template(principal.entity_id, template_id)
        if stored is not None:
            return stored
        if any(app.template(template_id) for app in self._chat_apps.all()):
            raise Forbidden(
                f"Template {template_id!r} is defined in the chat apps file; "
                "change it there, not over the API."
            )
        raise template_not_found(template_id)

    def _validated(
        self, template_id: str, definition: DefineTemplate, chat_app: ChatApp | None
    ) -> SessionTemplate:
        limits = self._limits
        name = check.name(definition.name, limits, "template name")
        if chat_app is not None:
            key = template_name_key(name)
            if any(template_name_key(t.name) == key for t in chat_app.templates):
                raise Conflict(
                    f"Chat app {chat_app.id!r} already has a template named {name!r} in the "
                    "chat apps file; pick another name."
                )
        description = check.optional_text(
            definition.description, limits.max_description_chars, "template description"
        )
        system_prompt = definition.system_prompt
        if system_prompt is not None:
            check.content(system_prompt, limits, required=False, what="system prompt")
            # A blank prompt would replace nothing useful in a session's context.
            system_prompt = system_prompt if system_prompt.strip() else None
        if definition.variables is not None and not isinstance(definition.variables, dict):
            raise InvalidInput("The template's variables must be a JSON object.")
        variables = check.json_value(definition.variables, limits, "template variables")
        return SessionTemplate(
            id=template_id,
            name=name,
            description=description or "",
            system_prompt=system_prompt,
            variables=variables,
            starter_turns=self._starter_turns(definition, chat_app),
        )

    def _starter_turns(
        self, definition: DefineTemplate, chat_app: ChatApp | None
    ) -> tuple[StarterTurn, ...]:
        most = self._limits.max_starter_turns
        if chat_app is not None:
            # A session must be able to hold them all, or createSession would fail half-way.
            most = min(most, chat_app.settings.max_session_history)
        if len(definition.starter_turns) > most:
            raise InvalidInput(
                f"A template has at most {most} starter turns; "
                f"{len(definition.starter_turns)} were given."
            )
        turns = []
        for number, (role, content) in enumerate(definition.starter_turns, start=1):
            if role not in STARTER_ROLES:
                raise InvalidInput(
                    f"Starter turn {number} is a {role.value} turn; "
                    "a starter turn is USER, ASSISTANT or SYSTEM."
                )
            text = check.content(
                content, self._limits, required=True, what=f"text of starter turn {number}"
            )
            turns.append(StarterTurn(role, text))
        return tuple(turns)

    def _chat_app(self, chat_app_id: str) -> ChatApp:
        chat_app = self._chat_apps.get(chat_app_id)
        if chat_app is None:
            raise NotFound(f"Chat app {chat_app_id!r} does not exist.")
        return chat_app


def _name_taken(name: str, chat_app_id: str) -> Conflict:
    return Conflict(
        f"Your entity already has a template named {name!r} in chat app {chat_app_id!r}; "
        "pick another name."
    )
