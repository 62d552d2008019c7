"""The access policy, cell by cell: who gets which access to alice's session."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from sessionhub.domain.models import (
    ChatApp,
    GranteeKind,
    Principal,
    Role,
    Session,
    SessionSettings,
    Share,
    ShareMode,
    TitleSource,
    TurnRole,
    UserType,
)
from sessionhub.domain.policy import (
    Access,
    access_to,
    can_verify,
    is_expired,
    may_act_on_behalf,
    may_append_role,
    may_open_link,
    may_share,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)
SESSION = Session(
    id="s1",
    entity_id="acme",
    chat_app_id="knowledge",
    owner_id="alice",
    title="t",
    title_source=TitleSource.MANUAL,
    created_at=NOW,
    updated_at=NOW,
    last_activity_at=NOW,
)
EXTERNAL_ON = ChatApp(
    "knowledge", "K", SessionSettings(allow_sharing=True, allow_external_sharing=True)
)
EXTERNAL_OFF = ChatApp("knowledge", "K", SessionSettings(allow_sharing=True))


def who(user: str, entity: str, *roles: Role, external: bool = False) -> Principal:
    return Principal(
        user,
        entity,
        UserType.EXTERNAL if external else UserType.INTERNAL,
        frozenset(roles or (Role.USER,)),
    )


def share(kind: GranteeKind, grantee: str | None, mode: ShareMode = ShareMode.READ, **kw) -> Share:
    """`grantee` is "entity/user" for USER and EXTERNAL grants."""
    entity, _, user = (grantee or "").partition("/")
    if kind is GranteeKind.ENTITY:
        entity, user = "acme", ""
    return Share(
        kw.pop("id", "sh"),
        "s1",
        "acme",
        kind,
        entity or None,
        user or None,
        mode,
        "alice",
        NOW - timedelta(days=1),
        **kw,
    )


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (who("alice", "acme"), Access.MANAGE),
        (who("bob", "acme"), Access.NONE),
        (who("alice", "globex"), Access.NONE),
        (who("root", "acme", Role.ADMIN), Access.MANAGE),
        (who("root", "globex", Role.ADMIN), Access.NONE),
        (who("eve", "acme", Role.ENTITY_ADMIN), Access.READ),
        (who("eve", "globex", Role.ENTITY_ADMIN), Access.NONE),
        (who("aud", "acme", Role.AUDITOR), Access.READ),
        (who("aud", "globex", Role.AUDITOR), Access.NONE),
        (who("agent", "acme", Role.SERVICE), Access.INTERACT),
        (who("agent", "globex", Role.SERVICE), Access.NONE),
    ],
)
def test_access_without_shares(principal: Principal, expected: Access) -> None:
    assert access_to(principal, SESSION, EXTERNAL_ON, [], NOW) is expected


@pytest.mark.parametrize(
    ("principal", "grant", "app", "expected"),
    [
        (who("bob", "acme"), share(GranteeKind.USER, "acme/bob"), EXTERNAL_ON, Access.READ),
        (
            who("bob", "acme"),
            share(GranteeKind.USER, "acme/bob", ShareMode.INTERACT),
            EXTERNAL_ON,
            Access.INTERACT,
        ),
        (who("carol", "acme"), share(GranteeKind.USER, "acme/bob"), EXTERNAL_ON, Access.NONE),
        # The same user id in another entity is another person.
        (who("bob", "globex"), share(GranteeKind.USER, "acme/bob"), EXTERNAL_ON, Access.NONE),
        (who("carol", "acme"), share(GranteeKind.ENTITY, None), EXTERNAL_ON, Access.READ),
        (who("carol", "globex"), share(GranteeKind.ENTITY, None), EXTERNAL_ON, Access.NONE),
        (
            who("ext", "acme", external=True),
            share(GranteeKind.ENTITY, None),
            EXTERNAL_ON,
            Access.NONE,
        ),
        (
            who("dan", "partner", external=True),
            share(GranteeKind.EXTERNAL, "partner/dan"),
            EXTERNAL_ON,
            Access.READ,
        ),
        (
            who("dan", "partner", external=True),
            share(GranteeKind.EXTERNAL, "partner/dan"),
            EXTERNAL_OFF,
            Access.NONE,
        ),
        (
            who("dan", "other", external=True),
            share(GranteeKind.EXTERNAL, "partner/dan"),
            EXTERNAL_ON,
            Access.NONE,
        ),
        (who("bob", "acme"), share(GranteeKind.LINK, None), EXTERNAL_ON, Access.NONE),
        (
            who("bob", "acme"),
            share(GranteeKind.USER, "acme/bob", revoked_at=NOW - timedelta(hours=1)),
            EXTERNAL_ON,
            Access.NONE,
        ),
        (
            who("bob", "acme"),
            share(GranteeKind.USER, "acme/bob", expires_at=NOW),
            EXTERNAL_ON,
            Access.NONE,
        ),
        (
            who("bob", "acme"),
            share(GranteeKind.USER, "acme/bob", expires_at=NOW + timedelta(seconds=1)),
            EXTERNAL_ON,
            Access.READ,
        ),
    ],
)
def test_access_through_shares(
    principal: Principal, grant: Share, app: ChatApp, expected: Access
) -> None:
    assert access_to(principal, SESSION, app, [grant], NOW) is expected


def test_the_strongest_grant_wins() -> None:
    grants = [
        share(GranteeKind.ENTITY, None, ShareMode.READ),
        share(GranteeKind.USER, "acme/bob", ShareMode.INTERACT),
    ]
    assert access_to(who("bob", "acme"), SESSION, EXTERNAL_ON, grants, NOW) is Access.INTERACT


def test_link_grants_only_to_those_who_opened_it() -> None:
    link = share(GranteeKind.LINK, None, ShareMode.INTERACT, id="link-1")
    bob = who("bob", "acme")
    assert access_to(bob, SESSION, EXTERNAL_OFF, [link], NOW) is Access.NONE
    assert access_to(bob, SESSION, EXTERNAL_OFF, [link], NOW, {"link-1"}) is Access.INTERACT
    outsider = who("dan", "partner")
    assert access_to(outsider, SESSION, EXTERNAL_OFF, [link], NOW, {"link-1"}) is Access.NONE
    assert access_to(outsider, SESSION, EXTERNAL_ON, [link], NOW, {"link-1"}) is Access.INTERACT
    revoked = share(GranteeKind.LINK, None, id="link-1", revoked_at=NOW)
    assert access_to(bob, SESSION, EXTERNAL_ON, [revoked], NOW, {"link-1"}) is Access.NONE


def test_links_open_beyond_the_entity_only_where_external_sharing_is_on() -> None:
    assert may_open_link(who("bob", "acme"), SESSION, EXTERNAL_OFF)
    assert not may_open_link(who("dan", "partner"), SESSION, EXTERNAL_OFF)
    assert may_open_link(who("dan", "partner"), SESSION, EXTERNAL_ON)


@pytest.mark.parametrize(
    ("principal", "kind", "allowed"),
    [
        (who("alice", "acme"), GranteeKind.USER, True),
        (who("alice", "acme"), GranteeKind.EXTERNAL, True),
        (who("alice", "acme"), GranteeKind.LINK, True),
        (who("alice", "acme", external=True), GranteeKind.USER, False),
        (who("agent", "acme", Role.SERVICE), GranteeKind.ENTITY, True),
        (who("agent", "acme", Role.SERVICE), GranteeKind.EXTERNAL, False),
        (who("agent", "acme", Role.SERVICE), GranteeKind.LINK, False),
        (who("root", "acme", Role.ADMIN), GranteeKind.EXTERNAL, True),
    ],
)
def test_who_may_make_which_grant(principal: Principal, kind: GranteeKind, allowed: bool) -> None:
    assert may_share(principal, kind) is allowed


def test_only_owner_admin_or_the_entitys_service_grade_turns() -> None:
    assert can_verify(who("alice", "acme"), SESSION, Access.MANAGE)
    assert can_verify(who("agent", "acme", Role.SERVICE), SESSION, Access.INTERACT)
    assert not can_verify(who("bob", "acme"), SESSION, Access.INTERACT)
    assert not can_verify(who("aud", "acme", Role.AUDITOR), SESSION, Access.READ)
    # A service of another entity holding INTERACT through a share is a collaborator.
    assert not can_verify(who("bot", "globex", Role.SERVICE), SESSION, Access.INTERACT)


def test_turning_sharing_off_ends_every_share() -> None:
    closed = ChatApp("knowledge", "K", SessionSettings(allow_sharing=False))
    grants = [
        share(GranteeKind.USER, "acme/bob", ShareMode.INTERACT),
        share(GranteeKind.ENTITY, None, id="e"),
    ]
    assert access_to(who("bob", "acme"), SESSION, closed, grants, NOW) is Access.NONE
    assert access_to(who("alice", "acme"), SESSION, closed, grants, NOW) is Access.MANAGE


def test_an_expired_session_is_gone_for_everyone() -> None:
    expiring = replace(SESSION, expires_at=NOW)
    later = replace(SESSION, expires_at=NOW + timedelta(microseconds=1))
    assert is_expired(expiring, NOW) and not is_expired(later, NOW)
    for principal in (
        who("alice", "acme"),
        who("root", "acme", Role.ADMIN),
        who("aud", "acme", Role.AUDITOR),
        who("svc", "acme", Role.SERVICE),
    ):
        assert access_to(principal, expiring, EXTERNAL_ON, [], NOW) is Access.NONE
    owner_access = access_to(who(SESSION.owner_id, SESSION.entity_id), later, EXTERNAL_ON, [], NOW)
    assert owner_access is Access.MANAGE


COLLABORATORS_SPEAK = ChatApp(
    "knowledge",
    "K",
    SessionSettings(
        allow_sharing=True, allow_external_sharing=True, agent_turns_from_collaborators=True
    ),
)
AGENT_ROLES = (TurnRole.ASSISTANT, TurnRole.TOOL, TurnRole.SYSTEM)


@pytest.mark.parametrize(
    ("principal", "access", "speaks_as_agent"),
    [
        (who("alice", "acme"), Access.MANAGE, True),
        (who("agent", "acme", Role.SERVICE), Access.INTERACT, True),
        # An admin manages the session but is a person, not the agent.
        (who("root", "acme", Role.ADMIN), Access.MANAGE, False),
        (who("bob", "acme"), Access.INTERACT, False),
        (who("dan", "partner", external=True), Access.INTERACT, False),
        # A service reached by a share from another entity is a collaborator there.
        (who("agent", "partner", Role.SERVICE), Access.INTERACT, False),
        (who("alice", "partner"), Access.INTERACT, False),
    ],
)
def test_only_the_owner_and_the_entitys_service_speak_as_the_agent(
    principal: Principal, access: Access, speaks_as_agent: bool
) -> None:
    assert may_append_role(principal, SESSION, access, TurnRole.USER, EXTERNAL_ON)
    for role in AGENT_ROLES:
        assert may_append_role(principal, SESSION, access, role, EXTERNAL_ON) is speaks_as_agent
    # Without INTERACT nobody writes anything.
    for role in (TurnRole.USER, *AGENT_ROLES):
        assert not may_append_role(principal, SESSION, Access.READ, role, EXTERNAL_ON)


@pytest.mark.parametrize(
    ("principal", "allowed"),
    [
        (who("bob", "acme"), {TurnRole.USER, TurnRole.ASSISTANT, TurnRole.TOOL}),
        (who("root", "acme", Role.ADMIN), {TurnRole.USER, TurnRole.ASSISTANT, TurnRole.TOOL}),
        (who("ext", "acme", external=True), {TurnRole.USER}),
        (who("dan", "partner"), {TurnRole.USER}),
        (who("agent", "partner", Role.SERVICE), {TurnRole.USER}),
    ],
)
def test_the_chat_app_may_let_the_entitys_people_append_agent_turns(
    principal: Principal, allowed: set[TurnRole]
) -> None:
    for role in (TurnRole.USER, *AGENT_ROLES):
        permitted = may_append_role(principal, SESSION, Access.INTERACT, role, COLLABORATORS_SPEAK)
        assert permitted is (role in allowed), role


def test_only_a_service_of_the_sessions_entity_acts_on_behalf_of_a_user() -> None:
    assert may_act_on_behalf(who("agent", "acme", Role.SERVICE), SESSION)
    assert may_act_on_behalf(who("agent", "acme", Role.SERVICE), None)
    assert not may_act_on_behalf(who("agent", "partner", Role.SERVICE), SESSION)
    assert may_act_on_behalf(who("agent", "partner", Role.SERVICE), None)
    assert not may_act_on_behalf(who("root", "acme", Role.ADMIN), SESSION)
