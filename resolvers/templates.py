"""Session templates: listed for everyone, defined by the entity's admins."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_field, auth_mutation
from ..domain.commands import DefineTemplate
from ..domain.models import Role
from ..schema.chat_apps import SessionTemplate
from ..schema.inputs import CreateTemplateInput, TemplateInput
from .context import Context

# As the access policy has it (can_define_templates): entity admins only watch.
TEMPLATE_ADMINS = [Role.ADMIN]


def _definition(input: CreateTemplateInput | TemplateInput) -> DefineTemplate:
    return DefineTemplate(
        name=input.name,
        description=input.description,
        system_prompt=input.system_prompt,
        variables=input.variables,
        starter_turns=[(t.role, t.content) for t in input.starter_turns or ()],
    )


async def _templates(
    info: Info[Context, None], chat_app_id: strawberry.ID
) -> list[SessionTemplate]:
    listed = await info.context.services.templates.list(
        info.context.require_principal(), chat_app_id
    )
    app_id = listed.chat_app.id
    return [SessionTemplate.of(app_id, t) for t in listed.from_file] + [
        SessionTemplate.of_entity(t) for t in listed.of_entity
    ]


async def _create_template(
    info: Info[Context, None], input: CreateTemplateInput
) -> SessionTemplate:
    created = await info.context.services.templates.create(
        info.context.require_principal(), input.chat_app_id, _definition(input)
    )
    return SessionTemplate.of_entity(created)


async def _update_template(
    info: Info[Context, None], id: strawberry.ID, input: TemplateInput
) -> SessionTemplate:
    updated = await info.context.services.templates.update(
        info.context.require_principal(), id, _definition(input)
    )
    return SessionTemplate.of_entity(updated)


async def _delete_template(info: Info[Context, None], id: strawberry.ID) -> bool:
    await info.context.services.templates.delete(info.context.require_principal(), id)
    return True


@strawberry.type
class TemplateQueries:
    templates: list[SessionTemplate] = auth_field(
        _templates,
        description="The session templates of a chat app for createSession: the chat apps "
        "file's, then those of the caller's entity.",
    )


@strawberry.type
class TemplateMutations:
    create_template: SessionTemplate = auth_mutation(
        _create_template,
        requires=TEMPLATE_ADMINS,
        description="A session template of the caller's entity for one chat app (admins).",
    )
    update_template: SessionTemplate = auth_mutation(
        _update_template,
        requires=TEMPLATE_ADMINS,
        description="Replace the whole of one of the entity's templates; the chat apps "
        "file's cannot be changed here.",
    )
    delete_template: bool = auth_mutation(
        _delete_template,
        requires=TEMPLATE_ADMINS,
        description="Delete one of the entity's templates; sessions started from it keep "
        "what it gave them.",
    )
