"""@auth is in the SDL, on every root field, and what it says is what is enforced."""

from __future__ import annotations

import pytest
import strawberry

from sessionhub.auth.permissions import auth_field
from sessionhub.domain.models import Role
from sessionhub.schema.build import build_schema


def test_the_sdl_declares_and_uses_auth(api) -> None:
    sdl = str(api.client.app.state.schema)
    assert "directive @auth(requires: [Role!], userType: UserType) on FIELD_DEFINITION" in sdl
    assert "deleteSession(id: ID!): Boolean! @auth(requires: [USER, ADMIN])" in sdl
    assert "me: Principal! @auth" in sdl


def test_every_root_field_carries_auth(api) -> None:
    schema = api.client.app.state.schema
    for root in (schema.query, schema.mutation):
        for field in root.__strawberry_definition__.fields:
            assert any(type(d).__name__ == "Auth" for d in field.directives), field.name


def test_a_root_field_without_auth_is_refused_at_build_time() -> None:
    @strawberry.type
    class Leaky:
        @strawberry.field
        def secret(self) -> str:
            return "x"

    @strawberry.type
    class Fine:
        ok: str = auth_field(lambda: "ok")

    with pytest.raises(TypeError, match="no @auth"):
        build_schema([Leaky], [Fine])


def test_roles_in_the_directive_are_enforced(api) -> None:
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    created = auditor.post('mutation { createSession(input: {chatAppId: "support"}) { id } }')
    assert created["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "USER" in created["errors"][0]["message"]
    assert auditor.ok("{ sessions { edges { cursor } } }")["sessions"]["edges"] == []
    service = api.as_("agent", "acme", Role.SERVICE)
    assert service.error_code("{ pinnedSessions { id } }") == "FORBIDDEN"
