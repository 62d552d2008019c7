"""The template service on a real SQLite file: the rules the API tests cannot reach cheaply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionhub.domain.chat_apps import ChatAppRegistry
from sessionhub.domain.commands import DefineTemplate
from sessionhub.domain.errors import Conflict, Forbidden, InvalidInput, LimitExceeded
from sessionhub.domain.models import ChatApp, Principal, Role, SessionSettings, TurnRole
from sessionhub.domain.templates import TemplateService
from sessionhub.domain.validation import Limits
from sessionhub.storage.sqlite.store import SqliteStore
from tests.support.clocks import SettableClock

ADA = Principal("ada", "acme", roles=frozenset({Role.ADMIN}))
RITA = Principal("rita", "acme", roles=frozenset({Role.ENTITY_ADMIN, Role.USER}))
APPS = ChatAppRegistry([ChatApp("short", "Short chats", SessionSettings(max_session_history=2))])


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[TemplateService]:
    store = SqliteStore(str(tmp_path / "t.db"), readers=2)
    await store.open()
    try:
        yield TemplateService(store, APPS, SettableClock(), Limits(max_templates_per_chat_app=3))
    finally:
        await store.close()


async def test_an_entity_holds_a_bounded_number_of_templates_per_chat_app(
    service: TemplateService,
) -> None:
    for n in range(3):
        await service.create(ADA, "short", DefineTemplate(f"Template {n}"))
    with pytest.raises(LimitExceeded, match="already has 3 templates in chat app 'short'"):
        await service.create(ADA, "short", DefineTemplate("One too many"))
    other_entity = Principal("ada", "globex", roles=frozenset({Role.ADMIN}))
    await service.create(other_entity, "short", DefineTemplate("Template 0"))
    assert len((await service.list(ADA, "short")).of_entity) == 3


async def test_starter_turns_fit_the_chat_apps_history(service: TemplateService) -> None:
    turns = [(TurnRole.USER, "Hi"), (TurnRole.ASSISTANT, "Hello"), (TurnRole.USER, "Well")]
    with pytest.raises(InvalidInput, match="at most 2 starter turns; 3 were given"):
        await service.create(ADA, "short", DefineTemplate("Chatty", starter_turns=turns))
    await service.create(ADA, "short", DefineTemplate("Chatty", starter_turns=turns[:2]))


async def test_concurrent_creates_of_one_name_leave_one_template(service: TemplateService) -> None:
    results = await asyncio.gather(
        *(service.create(ADA, "short", DefineTemplate("Same name")) for _ in range(2)),
        return_exceptions=True,
    )
    (refused,) = [r for r in results if isinstance(r, Exception)]
    assert isinstance(refused, Conflict)
    assert refused.message == (
        "Your entity already has a template named 'Same name' in chat app 'short'; "
        "pick another name."
    )
    assert [t.template.name for t in (await service.list(ADA, "short")).of_entity] == ["Same name"]


async def test_the_service_itself_refuses_whoever_is_not_an_admin(
    service: TemplateService,
) -> None:
    # The @auth gate refuses them first; the policy holds without it too.
    with pytest.raises(Forbidden):
        await service.create(RITA, "short", DefineTemplate("Mine"))
    assert (await service.list(RITA, "short")).of_entity == []
