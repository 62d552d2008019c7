"""Session templates that admins define over GraphQL, beside the chat apps file's.

The shipped chat apps file gives `support` the template `order-issue` and `knowledge` the
template `research-brief`. ada is an admin of acme; alice a user of acme; globex is
another entity with its own admin and user.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

from sessionhub.domain.models import Role

FIELDS = "id chatAppId name description systemPrompt variables starterTurns { role content } source updatedAt"
TEMPLATES = f"query($app: ID!) {{ templates(chatAppId: $app) {{ {FIELDS} }} }}"
CREATE = (
    f"mutation($input: CreateTemplateInput!) {{ createTemplate(input: $input) {{ {FIELDS} }} }}"
)
UPDATE = f"mutation($id: ID!, $input: TemplateInput!) {{ updateTemplate(id: $id, input: $input) {{ {FIELDS} }} }}"
DELETE = "mutation($id: ID!) { deleteTemplate(id: $id) }"
START = """mutation($input: CreateSessionInput!) { createSession(input: $input) {
  id templateId turnCount agentContext turns { nodes { seq role authorId content } } } }"""
AUDIT = """query($action: String) { auditLog(filter: {action: $action}, first: 100) {
  edges { node { actorId action target details } } } }"""

REFUND = {
    "chatAppId": "support",
    "name": "Refund request",
    "description": "A customer wants their money back.",
    "systemPrompt": "You handle refunds. Ask for the order number first.",
    "variables": {"tone": "warm", "approval_above": 100},
    "starterTurns": [
        {"role": "SYSTEM", "content": "Refunds above 100 EUR need a manager's approval."},
        {"role": "ASSISTANT", "content": "Which order would you like refunded?"},
    ],
}


def definition(**changes: Any) -> dict:
    """REFUND as updateTemplate takes it (no chatAppId), with `changes`."""
    return {**{k: v for k, v in REFUND.items() if k != "chatAppId"}, **changes}


def create(caller: Any, **changes: Any) -> dict:
    return caller.ok(CREATE, {"input": {**REFUND, **changes}})["createTemplate"]


def names(caller: Any, app: str = "support") -> list[tuple[str, str]]:
    return [(t["name"], t["source"]) for t in caller.ok(TEMPLATES, {"app": app})["templates"]]


def first_error(caller: Any, query: str, variables: dict) -> dict:
    body = caller.post(query, variables)
    assert body.get("errors") and body.get("data") is None, body
    return body["errors"][0]


def missing_id() -> str:
    return str(uuid.uuid4())


def test_an_admin_defines_a_template_the_entity_lists_and_starts_sessions_from(api: Any) -> None:
    ada = api.as_("ada", "acme", Role.ADMIN)
    alice = api.as_("alice", "acme")

    made = create(ada)

    assert made["source"] == "ENTITY" and made["chatAppId"] == "support"
    assert made["updatedAt"] is not None
    assert {k: made[k] for k in ("name", "description", "systemPrompt", "variables")} == {
        k: REFUND[k] for k in ("name", "description", "systemPrompt", "variables")
    }
    assert made["starterTurns"] == REFUND["starterTurns"]
    listed = alice.ok(TEMPLATES, {"app": "support"})["templates"]
    assert [(t["id"], t["source"]) for t in listed] == [
        ("order-issue", "CHAT_APPS_FILE"),
        (made["id"], "ENTITY"),
    ]
    assert listed[0]["updatedAt"] is None and listed[1] == made
    assert names(alice, "knowledge") == [("Research brief", "CHAT_APPS_FILE")]

    session = alice.ok(
        START,
        {
            "input": {
                "chatAppId": "support",
                "templateId": made["id"],
                "agentContext": {"variables": {"tone": "brisk"}, "memory": ["vip"]},
            }
        },
    )["createSession"]
    assert session["templateId"] == made["id"] and session["turnCount"] == 2
    assert session["agentContext"] == {
        "systemPrompt": REFUND["systemPrompt"],
        "variables": {"tone": "brisk", "approval_above": 100},
        "memory": ["vip"],
    }
    assert [(t["role"], t["authorId"], t["content"]) for t in session["turns"]["nodes"]] == [
        ("SYSTEM", "alice", REFUND["starterTurns"][0]["content"]),
        ("ASSISTANT", "template", REFUND["starterTurns"][1]["content"]),
    ]

    # An agent back end of the entity starts one for a user as well.
    agent = api.as_("agent", "acme", Role.SERVICE)
    served = agent.ok(
        START, {"input": {"chatAppId": "support", "templateId": made["id"], "onBehalfOf": "bob"}}
    )["createSession"]
    assert served["templateId"] == made["id"] and served["turnCount"] == 2

    (event,) = ada.ok(AUDIT, {"action": "template.created"})["auditLog"]["edges"]
    assert event["node"] == {
        "actorId": "ada",
        "action": "template.created",
        "target": f"template:{made['id']}",
        "details": {"chatAppId": "support", "name": "Refund request"},
    }


def with_id(variables: dict, template_id: str) -> dict:
    return json.loads(json.dumps(variables).replace("%ID%", template_id))


def test_another_entity_never_sees_uses_changes_or_deletes_it(api: Any) -> None:
    ada = api.as_("ada", "acme", Role.ADMIN)
    alice = api.as_("alice", "acme")
    made = create(ada)
    before = alice.ok(TEMPLATES, {"app": "support"})
    absent = missing_id()
    attempts = [
        (START, {"input": {"chatAppId": "support", "templateId": "%ID%"}}),
        (UPDATE, {"id": "%ID%", "input": definition(name="Taken over")}),
        (DELETE, {"id": "%ID%"}),
    ]

    for caller, admin in (
        (api.as_("mallory", "globex", Role.ADMIN), True),
        (api.as_("ada", "globex", *Role), True),  # the same user id, every role
        (api.as_("bob", "globex"), False),
    ):
        assert names(caller) == [("Order issue", "CHAT_APPS_FILE")]
        for query, variables in attempts:
            theirs = first_error(caller, query, with_id(variables, made["id"]))
            nothing = first_error(caller, query, with_id(variables, absent))
            if query is START or admin:
                assert theirs["extensions"]["code"] == "NOT_FOUND", theirs
                assert theirs["message"].replace(made["id"], "<id>") == nothing["message"].replace(
                    absent, "<id>"
                )
            else:  # a user meets the role gate, which looks at no template at all
                assert theirs == nothing
                assert theirs["extensions"]["code"] == "FORBIDDEN", theirs

    assert alice.ok(TEMPLATES, {"app": "support"}) == before
    actions = [e["node"]["action"] for e in ada.ok(AUDIT, {})["auditLog"]["edges"]]
    assert actions == ["template.created"]
    globex_admin = api.as_("mallory", "globex", Role.ADMIN)
    assert globex_admin.ok(AUDIT, {})["auditLog"]["edges"] == []


def test_a_template_of_one_chat_app_does_not_start_a_session_of_another(api: Any) -> None:
    ada = api.as_("ada", "acme", Role.ADMIN)
    alice = api.as_("alice", "acme")
    made = create(ada)
    error = first_error(
        alice, START, {"input": {"chatAppId": "knowledge", "templateId": made["id"]}}
    )
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert "does not exist in chat app 'knowledge'" in error["message"]
    assert alice.ok("{ sessions { edges { node { id } } } }")["sessions"]["edges"] == []


def test_update_replaces_the_template_and_delete_removes_it(api: Any) -> None:
    ada = api.as_("ada", "acme", Role.ADMIN)
    alice = api.as_("alice", "acme")
    made = create(ada)
    started = alice.ok(START, {"input": {"chatAppId": "support", "templateId": made["id"]}})[
        "createSession"
    ]

    changed = ada.ok(
        UPDATE,
        {
            "id": made["id"],
            "input": {
                "name": "Refund  (large orders)",
                "starterTurns": [{"role": "USER", "content": "I want my money back."}],
            },
        },
    )["updateTemplate"]

    assert changed["id"] == made["id"] and changed["chatAppId"] == "support"
    assert changed["name"] == "Refund (large orders)"  # spacing collapsed
    assert (changed["description"], changed["systemPrompt"], changed["variables"]) == (
        "",
        None,
        None,
    )
    assert changed["starterTurns"] == [{"role": "USER", "content": "I want my money back."}]
    assert alice.ok(TEMPLATES, {"app": "support"})["templates"][1] == changed
    again = alice.ok(START, {"input": {"chatAppId": "support", "templateId": made["id"]}})[
        "createSession"
    ]
    assert again["agentContext"] is None
    assert [(t["role"], t["authorId"]) for t in again["turns"]["nodes"]] == [("USER", "alice")]

    assert ada.ok(DELETE, {"id": made["id"]}) == {"deleteTemplate": True}
    assert names(alice) == [("Order issue", "CHAT_APPS_FILE")]
    for query, variables in (
        (START, {"input": {"chatAppId": "support", "templateId": made["id"]}}),
        (UPDATE, {"id": made["id"], "input": definition()}),
        (DELETE, {"id": made["id"]}),
    ):
        caller = alice if query is START else ada
        assert first_error(caller, query, variables)["extensions"]["code"] == "NOT_FOUND"
    # What the template gave a session stays with it.
    kept = alice.ok(
        "query($id: ID!) { session(id: $id) { templateId turnCount agentContext } }",
        {"id": started["id"]},
    )["session"]
    assert kept == {
        "templateId": made["id"],
        "turnCount": 2,
        "agentContext": {
            "systemPrompt": REFUND["systemPrompt"],
            "variables": REFUND["variables"],
        },
    }

    auditor = api.as_("aud", "acme", Role.AUDITOR)
    events = [e["node"] for e in auditor.ok(AUDIT, {})["auditLog"]["edges"]]
    template_events = [e for e in events if e["target"] == f"template:{made['id']}"]
    assert [(e["action"], e["details"]) for e in template_events] == [
        ("template.deleted", {"chatAppId": "support", "name": "Refund (large orders)"}),
        (
            "template.updated",
            {
                "chatAppId": "support",
                "name": "Refund (large orders)",
                "previousName": "Refund request",
            },
        ),
        ("template.created", {"chatAppId": "support", "name": "Refund request"}),
    ]
    # The session events around them are still listed, and filtered by session.
    by_session = auditor.ok(
        "query($id: ID!) { auditLog(filter: {sessionId: $id}) { edges { node { target } } } }",
        {"id": started["id"]},
    )["auditLog"]["edges"]
    assert {e["node"]["target"] for e in by_session} <= {f"session:{started['id']}"}
    # Its name is free again.
    assert create(ada)["name"] == "Refund request"


@pytest.mark.parametrize("template_id", ["order-issue", "research-brief"])
def test_the_chat_apps_files_templates_cannot_be_changed_over_the_api(
    api: Any, template_id: str
) -> None:
    ada = api.as_("ada", "acme", Role.ADMIN)
    before = [ada.ok(TEMPLATES, {"app": app}) for app in ("support", "knowledge")]

    for query, variables in (
        (UPDATE, {"id": template_id, "input": definition()}),
        (DELETE, {"id": template_id}),
    ):
        error = first_error(ada, query, variables)
        assert error["extensions"]["code"] == "FORBIDDEN", error
        assert error["message"] == (
            f"Template {template_id!r} is defined in the chat apps file; "
            "change it there, not over the API."
        )

    assert [ada.ok(TEMPLATES, {"app": app}) for app in ("support", "knowledge")] == before
    assert ada.ok(AUDIT, {})["auditLog"]["edges"] == []


@pytest.mark.parametrize(
    "roles",
    [(Role.USER,), (Role.ENTITY_ADMIN,), (Role.AUDITOR,), (Role.SERVICE,)],
    ids=lambda roles: roles[0].value,
)
def test_only_admins_define_templates(api: Any, roles: tuple[Role, ...]) -> None:
    ada = api.as_("ada", "acme", Role.ADMIN)
    made = create(ada)
    caller = api.as_("rita", "acme", *roles)
    before = ada.ok(TEMPLATES, {"app": "support"})

    for query, variables in (
        (CREATE, {"input": {**REFUND, "name": "Mine"}}),
        (UPDATE, {"id": made["id"], "input": definition(name="Mine")}),
        (DELETE, {"id": made["id"]}),
    ):
        error = first_error(caller, query, variables)
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "needs one of these roles: ADMIN" in error["message"]

    assert ada.ok(TEMPLATES, {"app": "support"}) == before


# ---------------------------------------------------------------------------------------
# Bad input: a coded error that names the problem, and nothing changes.

LONG = "x" * 100_001


def _create(**changes: Any) -> tuple[str, dict]:
    return CREATE, {"input": {**REFUND, "name": "Another", **changes}}


def _update(**changes: Any) -> tuple[str, dict]:
    return UPDATE, {"id": "%EXISTING%", "input": definition(**changes)}


BAD = [
    ("empty name", *_create(name=" \t "), "BAD_USER_INPUT", r"template name is empty"),
    (
        "name over 200 characters",
        *_create(name="n" * 201),
        "BAD_USER_INPUT",
        r"template name has 201 characters; the limit is 200",
    ),
    (
        "name taken in the entity (case and spacing aside)",
        *_create(name="  refund   REQUEST"),
        "CONFLICT",
        r"already has a template named 'refund REQUEST' in chat app 'support'",
    ),
    (
        "name of the chat apps file's template",
        *_create(name="ORDER ISSUE"),
        "CONFLICT",
        r"template named 'ORDER ISSUE' in the chat apps file",
    ),
    (
        "unknown chat app",
        *_create(chatAppId="kiosk"),
        "NOT_FOUND",
        r"Chat app 'kiosk' does not exist",
    ),
    (
        "variables that are not an object",
        *_create(variables=[1, 2]),
        "BAD_USER_INPUT",
        r"variables must be a JSON object",
    ),
    (
        "system prompt over the content limit",
        *_create(systemPrompt=LONG),
        "BAD_USER_INPUT",
        r"system prompt has 100,001 characters; the limit is 100,000",
    ),
    (
        "description over 4,000 characters",
        *_create(description="d" * 4001),
        "BAD_USER_INPUT",
        r"template description has 4,001 characters; the limit is 4,000",
    ),
    (
        "a TOOL starter turn",
        *_create(starterTurns=[{"role": "TOOL", "content": "ran"}]),
        "BAD_USER_INPUT",
        r"Starter turn 1 is a TOOL turn; a starter turn is USER, ASSISTANT or SYSTEM",
    ),
    (
        "an empty starter turn",
        *_create(starterTurns=[{"role": "USER", "content": "Hi"}, {"role": "USER", "content": ""}]),
        "BAD_USER_INPUT",
        r"text of starter turn 2 is empty",
    ),
    (
        "101 starter turns",
        *_create(starterTurns=[{"role": "USER", "content": "Hi"}] * 101),
        "BAD_USER_INPUT",
        r"at most 100 starter turns; 101 were given",
    ),
    (
        "a starter turn with an unknown role",
        *_create(starterTurns=[{"role": "WIZARD", "content": "Hi"}]),
        "BAD_USER_INPUT",
        r"'WIZARD' does not exist in 'TurnRole' enum",
    ),
    ("update with an empty name", *_update(name=""), "BAD_USER_INPUT", r"template name is empty"),
    (
        "update to a name the entity already uses",
        *_update(name="exchange"),
        "CONFLICT",
        r"already has a template named 'exchange'",
    ),
    (
        "update of an id that cannot be one",
        UPDATE,
        {"id": "i" * 500, "input": definition()},
        "BAD_USER_INPUT",
        r"template id 'i+' is not a valid id",
    ),
    (
        "update of a template that does not exist",
        UPDATE,
        {"id": "%MISSING%", "input": definition()},
        "NOT_FOUND",
        r"Template '[0-9a-f-]{36}' was not found",
    ),
    (
        "delete of a template that does not exist",
        DELETE,
        {"id": "%MISSING%"},
        "NOT_FOUND",
        r"Template '[0-9a-f-]{36}' was not found",
    ),
]


@pytest.mark.parametrize(
    ("query", "variables", "code", "says"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_template_input_is_refused_with_a_code_and_changes_nothing(
    api: Any, query: str, variables: dict, code: str, says: str
) -> None:
    ada = api.as_("ada", "acme", Role.ADMIN)
    existing = create(ada)
    create(ada, name="Exchange")

    def snapshot() -> list[dict]:
        return [ada.ok(TEMPLATES, {"app": app}) for app in ("support", "knowledge")] + [
            ada.ok(AUDIT, {})
        ]

    before = snapshot()
    text = json.dumps(variables)
    text = text.replace("%EXISTING%", existing["id"]).replace("%MISSING%", missing_id())
    error = first_error(ada, query, json.loads(text))

    assert error["extensions"]["code"] == code, error
    assert re.search(says, error["message"]), error["message"]
    assert snapshot() == before
