"""Nothing of a session leaks to a principal who may not see it.

alice@acme owns two sessions (chat apps `support` and `knowledge`, neither shared) with
turns, a tool invocation, a verification, feedback and a pin. Every root field of the
schema is then walked by intruders: bob of the same entity, an `alice` of another entity
(user ids are unique per entity only) and a mallory of that other entity holding each
role in turn. A session-bound operation must answer exactly as it answers for an id that
does not exist (NOT_FOUND, or null / an empty list for queries): never data, never a
FORBIDDEN that would tell the caller the session is there. The one FORBIDDEN allowed is
the @auth role gate of a field, which does not look at the session at all; the walk
checks that it, too, reads the same for a missing id. Afterwards alice's view of her
sessions is byte for byte what it was.

Within acme the roles the access policy grants do work: entity-admin and auditor read,
service appends and grades, admin manages; and the readers cannot write.

Requests without a valid token are refused with HTTP 401 / UNAUTHENTICATED before any
operation runs.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from sessionhub.domain.models import Role
from sessionhub.schema.directives import Auth

# ---------------------------------------------------------------------------------------
# Talking to the API


class Gql:
    """One principal's GraphQL calls; keeps the raw bytes for byte-for-byte comparisons."""

    def __init__(self, client: TestClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def raw(self, query: str, variables: dict | None = None) -> tuple[int, dict, bytes]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return response.status_code, response.json(), response.content

    def post(self, query: str, variables: dict | None = None) -> dict:
        status, body, _ = self.raw(query, variables)
        assert status == 200, (status, body)
        return body

    def ok(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def error(self, query: str, variables: dict | None = None) -> dict:
        """The first error of a request that must fail, after checking it returned nothing."""
        body = self.post(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        assert body.get("data") is None, f"an error came with data: {body}"
        return body["errors"][0]


def as_(api: Any, user: str, entity: str, *roles: Role) -> Gql:
    return Gql(api.client, api.token(user, entity, roles or (Role.USER,)))


# ---------------------------------------------------------------------------------------
# The full selection of a type, built from introspection, so that a field added to
# Session (or to anything it holds) is part of the before/after comparison at once.

_TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
INTROSPECTION = f"""
query {{
  __schema {{
    queryType {{ fields {{ name }} }}
    mutationType {{ fields {{ name }} }}
    types {{
      name kind
      fields {{ name type {{ {_TYPE_REF} }} args {{ name defaultValue type {{ {_TYPE_REF} }} }} }}
    }}
  }}
}}
"""

# Arguments for fields that page: ask for everything a test session holds (a few turns),
# within the server's query cost limit.
FIELD_ARGUMENTS = {("Session", "turns"): "(first: 10)", ("Session", "context"): "(maxTurns: 10)"}


def _named(type_ref: dict) -> dict:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    return type_ref


def full_selection(types: dict[str, dict], type_name: str, path: tuple[str, ...] = ()) -> str:
    parts = []
    for field in types[type_name]["fields"]:
        arguments = FIELD_ARGUMENTS.get((type_name, field["name"]), "")
        required = [
            a["name"]
            for a in field["args"]
            if a["type"]["kind"] == "NON_NULL" and a["defaultValue"] is None
        ]
        assert not required or arguments, (
            f"{type_name}.{field['name']} has required arguments {required}; "
            "add them to FIELD_ARGUMENTS"
        )
        named = _named(field["type"])
        if named["kind"] in ("SCALAR", "ENUM"):
            parts.append(field["name"] + arguments)
        elif named["kind"] == "OBJECT":
            if named["name"] in path:
                continue  # a cycle: the outer selection already holds this type
            inner = full_selection(types, named["name"], (*path, type_name))
            parts.append(f"{field['name']}{arguments} {{ {inner} }}")
        else:  # unions and interfaces: at least the concrete type name
            parts.append(f"{field['name']}{arguments} {{ __typename }}")
    return " ".join(parts)


def introspect(gql: Gql) -> dict:
    return gql.ok(INTROSPECTION)["__schema"]


# ---------------------------------------------------------------------------------------
# alice's world


@dataclass
class World:
    alice: Gql
    support: str  # session ids
    knowledge: str
    support_turn: str  # a turn with a tool invocation, a verification and feedback
    knowledge_turn: str
    knowledge_share: str  # a READ share of the knowledge session to carol
    session_selection: str  # every field of Session, recursively

    @property
    def sessions(self) -> list[tuple[str, str, str]]:
        """(session, turn, share) of each session; `support` allows no sharing, so its
        share id names no share."""
        return [
            (self.support, self.support_turn, missing_id()),
            (self.knowledge, self.knowledge_turn, self.knowledge_share),
        ]

    def snapshot(self) -> list[bytes]:
        """alice's whole view: both sessions with every field and turn, her list, her pins."""
        views = []
        for session_id in (self.support, self.knowledge):
            status, body, content = self.alice.raw(
                f"query($id: ID!) {{ session(id: $id) {{ {self.session_selection} }} }}",
                {"id": session_id},
            )
            assert status == 200 and not body.get("errors"), body
            assert body["data"]["session"]["id"] == session_id
            views.append(content)
        # The list and the pins name the sessions read in full above (a list of every
        # field of 100 pinned sessions is beyond the server's query cost limit).
        for query in (
            "{ sessions(filter: {archived: null}, first: 3) "
            f"{{ edges {{ cursor dateGroup node {{ {self.session_selection} }} }} }} }}",
            "{ pinnedSessions { id title titleSource pinned turnCount lastActivityAt } }",
        ):
            status, body, content = self.alice.raw(query)
            assert status == 200 and not body.get("errors"), body
            views.append(content)
        return views


SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { createdSession session { id } turn { id } }
}"""
APPEND = "mutation($input: AppendTurnInput!) { appendTurn(input: $input) { id seq } }"
VERIFY = """
mutation($turn: ID!, $input: VerificationInput!) {
  setVerification(turnId: $turn, input: $input) { id verification { grade } }
}"""
FEEDBACK = """
mutation($turn: ID!, $input: FeedbackInput!) {
  addFeedback(turnId: $turn, input: $input) { id feedback { kind } }
}"""


def build_world(api: Any) -> World:
    alice = as_(api, "alice", "acme")

    opened = alice.ok(
        SEND, {"input": {"chatAppId": "support", "content": "My router keeps dropping the line."}}
    )["sendMessage"]
    support = opened["session"]["id"]
    support_turn = alice.ok(
        APPEND,
        {
            "input": {
                "sessionId": support,
                "content": "I looked up your router.",
                "toolInvocations": [
                    {
                        "name": "lookup_router",
                        "input": {"serial": "RX-1"},
                        "output": {"firmware": "1.2"},
                        "status": "SUCCEEDED",
                        "durationMs": 12.5,
                    }
                ],
                "trace": {"steps": ["lookup"]},
                "insights": {"intent": "connectivity"},
                "metadata": {"model": "m-1"},
                "usage": {"inputTokens": 120, "outputTokens": 40, "cost": 0.002},
            }
        },
    )["appendTurn"]["id"]
    alice.ok(APPEND, {"input": {"sessionId": support, "content": "Try firmware 1.3."}})
    alice.ok(SEND, {"input": {"sessionId": support, "content": "That fixed it, thanks."}})
    alice.ok(
        VERIFY, {"turn": support_turn, "input": {"grade": "A", "score": 0.9, "notes": "correct"}}
    )
    alice.ok(FEEDBACK, {"turn": support_turn, "input": {"kind": "THUMBS_UP", "comment": "quick"}})
    alice.ok("mutation($id: ID!) { pinSession(id: $id) { pinned } }", {"id": support})

    opened = alice.ok(
        SEND, {"input": {"chatAppId": "knowledge", "content": "Summarise the Q3 report."}}
    )["sendMessage"]
    knowledge = opened["session"]["id"]
    knowledge_turn = alice.ok(
        APPEND, {"input": {"sessionId": knowledge, "content": "Revenue grew 12%."}}
    )["appendTurn"]["id"]
    alice.ok(VERIFY, {"turn": knowledge_turn, "input": {"grade": "B"}})
    alice.ok(FEEDBACK, {"turn": knowledge_turn, "input": {"kind": "INCOMPLETE"}})
    alice.ok(
        "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { title } }",
        {"id": knowledge, "t": "Q3 summary"},
    )

    knowledge_share = alice.ok(
        "mutation($id: ID!) { shareSession(input: {sessionId: $id, granteeKind: USER, "
        'userId: "carol"}) { id } }',
        {"id": knowledge},
    )["shareSession"]["id"]
    alice.ok(
        "mutation($id: ID!) { shareSession(input: {sessionId: $id, granteeKind: LINK, "
        "mode: INTERACT}) { id linkToken } }",
        {"id": knowledge},
    )

    # Automatic titles are made in the background: let them land before anyone takes a
    # snapshot, so that a title arriving mid-walk is not taken for an intruder's change.
    api.client.portal.call(api.client.app.state.components.titles.drain)
    return World(
        alice,
        support,
        knowledge,
        support_turn,
        knowledge_turn,
        knowledge_share,
        session_selection(alice),
    )


_SELECTION: dict[str, str] = {}


def session_selection(gql: Gql) -> str:
    """Every field of Session, from the schema the app serves (the same in every test)."""
    if "Session" not in _SELECTION:
        types = {t["name"]: t for t in introspect(gql)["types"] if t["kind"] == "OBJECT"}
        _SELECTION["Session"] = full_selection(types, "Session")
    return _SELECTION["Session"]


# ---------------------------------------------------------------------------------------
# The walk: one row per root field of the schema.


class Expect:
    NULL = "null"  # a session-bound query: null, as for an id that does not exist
    EXCLUDES = "excludes"  # a list: none of alice's sessions in it
    DENIED = "denied"  # a session-bound mutation: NOT_FOUND (or the field's role gate)
    UNBOUND = "unbound"  # not about a session: answers about the caller only
    NO_TRACE = "no trace"  # about the caller's entity: no id of alice's anywhere in it
    BULK = "bulk"  # one result per id: NOT_FOUND for alice's, and nothing of hers exported


@dataclass(frozen=True)
class Op:
    field: str
    document: str
    variables: Callable[[str, str, str], dict]  # (session, turn, share id) -> variables
    expect: str


S = "id title turnCount pinned archived turns { totalCount nodes { id content } }"
T = "id seq content verification { grade } feedback { kind userId }"


def mutation(variables: str, call: str, selection: str = "") -> str:
    """`mutation(<variables>) { <call> { <selection> } }`."""
    selected = f" {{ {selection} }}" if selection else ""
    return f"mutation({variables}) {{ {call}{selected} }}"


# alice's support session speaks of her router (a test below checks she finds it).
SEARCH_ROUTER = (
    'query { searchSessions(query: "router", first: 100) '
    "{ edges { node { session { id title } turns { snippet } } } } }"
)

WALK = [
    # Query
    Op("me", "{ me { userId entityId roles } }", lambda s, t, sh: {}, Expect.UNBOUND),
    Op("chatApps", "{ chatApps { id name } }", lambda s, t, sh: {}, Expect.UNBOUND),
    Op(
        "templates",
        '{ templates(chatAppId: "knowledge") { id name } }',
        lambda s, t, sh: {},
        Expect.UNBOUND,
    ),
    Op(
        "session",
        "query($id: ID!) { session(id: $id) { %SESSION% } }",
        lambda s, t, sh: {"id": s},
        Expect.NULL,
    ),
    Op(
        "sessions",
        "{ sessions(filter: {archived: null}, first: 100) { edges { node { id title } } } }",
        lambda s, t, sh: {},
        Expect.EXCLUDES,
    ),
    Op("pinnedSessions", "{ pinnedSessions { id title } }", lambda s, t, sh: {}, Expect.EXCLUDES),
    # Mutation
    Op(
        "createSession",
        'mutation { createSession(input: {chatAppId: "support", title: "Mine"}) { id ownerId } }',
        lambda s, t, sh: {},
        Expect.UNBOUND,
    ),
    Op(
        "sendMessage",
        mutation(
            "$s: ID!",
            'sendMessage(input: {sessionId: $s, content: "Hello?"})',
            f"createdSession session {{ {S} }} turn {{ {T} }}",
        ),
        lambda s, t, sh: {"s": s},
        Expect.DENIED,
    ),
    Op(
        "appendTurn",
        mutation("$input: AppendTurnInput!", "appendTurn(input: $input)", T),
        lambda s, t, sh: {
            "input": {
                "sessionId": s,
                "content": "Injected answer",
                "toolInvocations": [{"name": "exfiltrate", "input": {"all": True}}],
                "usage": {"inputTokens": 1, "outputTokens": 1, "cost": 1.0},
            }
        },
        Expect.DENIED,
    ),
    Op(
        "setVerification",
        mutation(
            "$t: ID!",
            'setVerification(turnId: $t, input: {grade: F, score: 0, notes: "tampered"})',
            T,
        ),
        lambda s, t, sh: {"t": t},
        Expect.DENIED,
    ),
    Op(
        "addFeedback",
        mutation(
            "$t: ID!", 'addFeedback(turnId: $t, input: {kind: HALLUCINATION, comment: "x"})', T
        ),
        lambda s, t, sh: {"t": t},
        Expect.DENIED,
    ),
    Op(
        "renameSession",
        mutation("$s: ID!", 'renameSession(id: $s, title: "Renamed by someone else")', S),
        lambda s, t, sh: {"s": s},
        Expect.DENIED,
    ),
    *[
        Op(
            field,
            mutation("$s: ID!", f"{field}(id: $s)", S),
            lambda s, t, sh: {"s": s},
            Expect.DENIED,
        )
        for field in ("pinSession", "unpinSession", "archiveSession", "unarchiveSession")
    ],
    Op(
        "deleteSession",
        mutation("$s: ID!", "deleteSession(id: $s)"),
        lambda s, t, sh: {"s": s},
        Expect.DENIED,
    ),
    Op(
        "shareSession",
        mutation(
            "$s: ID!",
            "shareSession(input: {sessionId: $s, granteeKind: LINK, mode: INTERACT})",
            "id linkToken",
        ),
        lambda s, t, sh: {"s": s},
        Expect.DENIED,
    ),
    Op(
        "revokeShare",
        mutation("$sh: ID!", "revokeShare(id: $sh)", "id live"),
        lambda s, t, sh: {"sh": sh},
        Expect.DENIED,
    ),
    Op(
        "sessionByShareLink",
        f"query($token: String!) {{ sessionByShareLink(token: $token) {{ {S} }} }}",
        # Without the token, guessing is all an intruder can do.
        lambda s, t, sh: {"token": s},
        Expect.DENIED,
    ),
    Op(
        "searchSessions",
        SEARCH_ROUTER,
        lambda s, t, sh: {},
        Expect.EXCLUDES,
    ),
    Op(
        "sharedWithMe",
        "{ sharedWithMe(first: 100) { edges { node { id title } } } }",
        lambda s, t, sh: {},
        Expect.EXCLUDES,
    ),
    Op(
        "exportSessions",
        mutation(
            "$s: ID!",
            "exportSessions(ids: [$s], format: JSON)",
            "text results { id status message }",
        ),
        lambda s, t, sh: {"s": s},
        Expect.BULK,
    ),
    *[
        Op(
            field,
            mutation("$s: ID!", f"{field}(id: $s)", S),
            lambda s, t, sh: {"s": s},
            Expect.DENIED,
        )
        for field in ("completeSession", "reopenSession")
    ],
    Op(
        "tagSessions",
        mutation(
            "$s: ID!",
            'tagSessions(ids: [$s], add: ["pwned"], remove: ["router"])',
            f"results {{ id status message }} sessions {{ {S} }}",
        ),
        lambda s, t, sh: {"s": s},
        Expect.BULK,
    ),
    *[
        Op(
            field,
            mutation(
                "$s: ID!",
                f"{field}(ids: [$s])",
                f"results {{ id status message }} sessions {{ {S} }}",
            ),
            lambda s, t, sh: {"s": s},
            Expect.BULK,
        )
        for field in ("bulkArchive", "bulkDelete")
    ],
    Op("myTags", "{ myTags(first: 1000) { tag count } }", lambda s, t, sh: {}, Expect.NO_TRACE),
    Op(
        "runRetention",
        "mutation { runRetention(dryRun: false) "
        "{ dryRun removed turns chatApps { chatAppId removed turns } } }",
        lambda s, t, sh: {},
        Expect.NO_TRACE,
    ),
    # An admin of another entity erasing "alice" erases their own entity's alice: acme's
    # alice keeps every byte (the walk compares her view afterwards).
    Op(
        "eraseUserData",
        'mutation { eraseUserData(userId: "alice") { userId sessions sessionTurns '
        "authoredTurns feedback pins shares linkVisits participations auditEvents } }",
        lambda s, t, sh: {},
        Expect.NO_TRACE,
    ),
    # Templates are the caller's entity's: creating one touches nothing of alice's, and no
    # id of hers names a template anyone may change (NOT_FOUND, or the admins' role gate).
    Op(
        "createTemplate",
        'mutation { createTemplate(input: {chatAppId: "support", name: "Mine", '
        'starterTurns: [{role: ASSISTANT, content: "Hello"}]}) { id chatAppId source } }',
        lambda s, t, sh: {},
        Expect.UNBOUND,
    ),
    *[
        Op(field, document, lambda s, t, sh: {"id": s}, Expect.DENIED)
        for field, document in (
            (
                "updateTemplate",
                mutation(
                    "$id: ID!", 'updateTemplate(id: $id, input: {name: "Taken over"})', "id name"
                ),
            ),
            ("deleteTemplate", mutation("$id: ID!", "deleteTemplate(id: $id)")),
        )
    ],
    Op(
        "auditLog",
        "{ auditLog(first: 100) { edges { node { id actorId action target details } } } }",
        lambda s, t, sh: {},
        Expect.NO_TRACE,
    ),
]


@dataclass(frozen=True)
class Intruder:
    label: str
    user: str
    entity: str
    roles: tuple[Role, ...]


INTRUDERS = [
    Intruder("bob@acme user", "bob", "acme", (Role.USER,)),
    Intruder("alice@globex user (same user id)", "alice", "globex", (Role.USER,)),
    Intruder("alice@globex every role", "alice", "globex", tuple(Role)),
    Intruder("mallory@globex admin", "mallory", "globex", (Role.ADMIN,)),
    Intruder("mallory@globex entity-admin", "mallory", "globex", (Role.ENTITY_ADMIN,)),
    Intruder("mallory@globex auditor", "mallory", "globex", (Role.AUDITOR,)),
    Intruder("mallory@globex service", "mallory", "globex", (Role.SERVICE,)),
]


def role_gate(app: Any, field: str) -> frozenset[Role]:
    """The roles the field's @auth directive requires (empty: any authenticated caller)."""
    schema = app.state.schema
    for root in (schema.query, schema.mutation):
        for definition in root.__strawberry_definition__.fields:
            if schema.config.name_converter.get_graphql_name(definition) == field:
                (auth,) = [d for d in definition.directives if isinstance(d, Auth)]
                return frozenset(auth.requires or ())
    raise AssertionError(f"no root field {field}")


def missing_id() -> str:
    return str(uuid.uuid4())


def _normalised(error: dict, *ids: str) -> tuple[str, str]:
    message = error["message"]
    for value in ids:
        message = message.replace(value, "<id>")
    return error["extensions"]["code"], message


def _document(op: Op, world: World) -> str:
    return op.document.replace("%SESSION%", world.session_selection)


def test_the_walk_covers_every_query_and_mutation_field(api: Any) -> None:
    schema = introspect(as_(api, "alice", "acme"))
    fields = {f["name"] for f in schema["queryType"]["fields"]}
    fields |= {f["name"] for f in (schema["mutationType"] or {"fields": []})["fields"]}
    walked = [op.field for op in WALK]
    assert len(walked) == len(set(walked)), "a field is walked twice"
    assert fields - set(walked) == set(), "root fields missing from WALK: add them"
    assert set(walked) - fields == set(), "WALK names fields the schema does not have"


@pytest.mark.parametrize("intruder", INTRUDERS, ids=lambda i: i.label)
def test_an_intruder_walking_every_field_learns_and_changes_nothing(
    api: Any, intruder: Intruder
) -> None:
    world = build_world(api)
    before = world.snapshot()
    caller = as_(api, intruder.user, intruder.entity, *intruder.roles)
    alices = {world.support, world.knowledge}
    created: list[str] = []

    for op in WALK:
        document = _document(op, world)
        gate = role_gate(api.client.app, op.field)
        gated = bool(gate) and not (gate & set(intruder.roles))
        where = f"{intruder.label} / {op.field}"

        if op.expect == Expect.NO_TRACE:
            body = caller.post(document, op.variables("", "", ""))
            if gated:
                assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", where
                continue
            assert not body.get("errors"), (where, body)
            text = json.dumps(body)
            for ids in world.sessions:
                assert not any(i in text for i in ids), f"{where} shows alice's ids"
            continue

        if op.expect == Expect.BULK:
            for ids in world.sessions:
                body = caller.post(document, op.variables(*ids))
                if gated:
                    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", where
                    continue
                assert not body.get("errors"), (where, body)
                result = body["data"][op.field]
                assert [r["status"] for r in result["results"]] == ["NOT_FOUND"], where
                if "text" in result:
                    assert ids[0] not in result["text"], f"{where} exported alice's session"
                if "sessions" in result:
                    assert result["sessions"] == [], f"{where} shows alice's session"
            continue

        if op.expect == Expect.UNBOUND:
            body = caller.post(document, op.variables("", "", ""))
            if gated:
                assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", where
                continue
            assert not body.get("errors"), (where, body)
            data = body["data"][op.field]
            if op.field == "me":
                assert (data["userId"], data["entityId"]) == (intruder.user, intruder.entity)
            elif op.field == "createSession":
                assert data["ownerId"] == intruder.user, where
                created.append(data["id"])
            continue

        if op.expect == Expect.EXCLUDES:
            body = caller.post(document, op.variables("", "", ""))
            if gated:
                assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", where
                assert body["data"] is None, where
                continue
            assert not body.get("errors"), (where, body)
            data = body["data"][op.field]
            nodes = data if isinstance(data, list) else [e["node"] for e in data["edges"]]
            listed = {n["session"]["id"] if "session" in n else n["id"] for n in nodes}
            assert not listed & alices, f"{where} lists alice's sessions"
            continue

        absent_ids = (missing_id(), missing_id(), missing_id())
        absent = caller.post(document, op.variables(*absent_ids))
        for ids in world.sessions:
            real = caller.post(document, op.variables(*ids))
            if op.expect == Expect.NULL:
                assert real == {"data": {op.field: None}}, (where, real)
                assert absent == real, where
                continue
            # Expect.DENIED
            assert real.get("errors") and real.get("data") is None, (where, real)
            error = real["errors"][0]
            code = error["extensions"]["code"]
            if gated:
                # The field's role gate, the same for every id: it says nothing of alice.
                assert code == "FORBIDDEN", (where, error)
                assert "needs one of these roles" in error["message"], (where, error)
            else:
                assert code == "NOT_FOUND", (where, error)
            assert _normalised(error, *ids) == _normalised(absent["errors"][0], *absent_ids), (
                f"{where}: alice's session answers differently from a missing one"
            )

    assert world.snapshot() == before, f"{intruder.label} changed alice's sessions"
    for session_id in created:
        # What the intruder created is the intruder's, not alice's.
        seen = world.alice.ok("query($id: ID!) { session(id: $id) { id } }", {"id": session_id})
        assert seen == {"session": None}, intruder.label


def test_the_walks_search_finds_alices_session_for_her(api: Any) -> None:
    world = build_world(api)
    found = world.alice.ok(SEARCH_ROUTER)["searchSessions"]["edges"]
    assert [e["node"]["session"]["id"] for e in found] == [world.support]


def test_a_service_of_another_entity_cannot_act_for_alice_of_acme(api: Any) -> None:
    world = build_world(api)
    before = world.snapshot()
    service = as_(api, "agent", "globex", Role.SERVICE)

    made = service.ok(
        'mutation { createSession(input: {chatAppId: "support", onBehalfOf: "alice"}) '
        "{ id ownerId } }"
    )["createSession"]
    sent = service.ok(
        SEND,
        {"input": {"chatAppId": "support", "content": "Hi from globex", "onBehalfOf": "alice"}},
    )["sendMessage"]
    code = service.error(
        APPEND,
        {"input": {"sessionId": world.support, "content": "Hi", "onBehalfOf": "alice"}},
    )["extensions"]["code"]

    assert made["ownerId"] == "alice"
    assert code == "NOT_FOUND"
    for session_id in (made["id"], sent["session"]["id"]):
        # They belong to the alice of globex, whom they may serve; not to alice of acme.
        assert world.alice.ok(
            "query($id: ID!) { session(id: $id) { id } }", {"id": session_id}
        ) == {"session": None}
        assert as_(api, "alice", "globex").ok(
            "query($id: ID!) { session(id: $id) { ownerId } }", {"id": session_id}
        ) == {"session": {"ownerId": "alice"}}
    assert world.snapshot() == before


# ---------------------------------------------------------------------------------------
# Same entity: the rights the access policy grants.


def _without_pinned(view: dict) -> dict:
    """`pinned` is the caller's own pin; everything else must be what the owner sees."""
    return {k: v for k, v in view.items() if k != "pinned"}


@pytest.mark.parametrize(
    "roles",
    [
        (Role.ENTITY_ADMIN,),
        (Role.AUDITOR,),
        # With `user` as well, the write fields' role gates let them through: the access
        # policy itself must refuse.
        (Role.ENTITY_ADMIN, Role.USER),
        (Role.AUDITOR, Role.USER),
    ],
    ids=lambda roles: "+".join(r.value for r in roles),
)
def test_entity_admin_and_auditor_of_the_entity_read_but_cannot_write(
    api: Any, roles: tuple[Role, ...]
) -> None:
    world = build_world(api)
    before = world.snapshot()
    reader = as_(api, "rita", "acme", *roles)
    query = f"query($id: ID!) {{ session(id: $id) {{ {world.session_selection} }} }}"

    for session_id, turn_id, _ in world.sessions:
        theirs = reader.ok(query, {"id": session_id})["session"]
        owners = world.alice.ok(query, {"id": session_id})["session"]
        assert theirs is not None and theirs["ownerId"] == "alice"
        assert _without_pinned(theirs) == _without_pinned(owners)
        assert theirs["turns"]["totalCount"] == owners["turnCount"] >= 2

        writes = [
            ("sendMessage", SEND, {"input": {"sessionId": session_id, "content": "Hi"}}),
            ("appendTurn", APPEND, {"input": {"sessionId": session_id, "content": "Hi"}}),
            ("setVerification", VERIFY, {"turn": turn_id, "input": {"grade": "F"}}),
            ("addFeedback", FEEDBACK, {"turn": turn_id, "input": {"kind": "OTHER"}}),
            (
                "renameSession",
                'mutation($id: ID!) { renameSession(id: $id, title: "Audited") { id } }',
                {"id": session_id},
            ),
            (
                "archiveSession",
                "mutation($id: ID!) { archiveSession(id: $id) { id } }",
                {"id": session_id},
            ),
            (
                "unarchiveSession",
                "mutation($id: ID!) { unarchiveSession(id: $id) { id } }",
                {"id": session_id},
            ),
            ("deleteSession", "mutation($id: ID!) { deleteSession(id: $id) }", {"id": session_id}),
        ]
        for field, document, variables in writes:
            # The session is visible to them, so FORBIDDEN reveals nothing new.
            assert reader.error(document, variables)["extensions"]["code"] == "FORBIDDEN", field

    # Their own list holds their own sessions only.
    listed = reader.ok("{ sessions(filter: {archived: null}) { edges { node { id } } } }")
    assert listed == {"sessions": {"edges": []}}
    assert world.snapshot() == before


TURNS = "query($id: ID!) { session(id: $id) { turnCount turns(last: 1) { nodes { authorId content verification { grade verifiedBy } } } } }"


def test_a_service_of_the_entity_appends_and_grades_but_does_not_manage(api: Any) -> None:
    world = build_world(api)
    service = as_(api, "agent", "acme", Role.SERVICE)
    count = world.alice.ok(TURNS, {"id": world.support})["session"]["turnCount"]

    turn = service.ok(APPEND, {"input": {"sessionId": world.support, "content": "Anything else?"}})[
        "appendTurn"
    ]
    service.ok(VERIFY, {"turn": turn["id"], "input": {"grade": "B"}})

    seen = world.alice.ok(TURNS, {"id": world.support})["session"]
    assert seen["turnCount"] == count + 1 == turn["seq"]
    assert seen["turns"]["nodes"] == [
        {
            "authorId": "agent",
            "content": "Anything else?",
            "verification": {"grade": "B", "verifiedBy": "agent"},
        }
    ]
    before = world.snapshot()
    for document in (
        'mutation($id: ID!) { renameSession(id: $id, title: "Agent title") { id } }',
        "mutation($id: ID!) { archiveSession(id: $id) { id } }",
        "mutation($id: ID!) { deleteSession(id: $id) }",
    ):
        assert service.error(document, {"id": world.support})["extensions"]["code"] == "FORBIDDEN"
    assert world.snapshot() == before


def test_an_admin_of_the_entity_manages_alices_sessions(api: Any) -> None:
    world = build_world(api)
    admin = as_(api, "ada", "acme", Role.ADMIN)
    view = "query($id: ID!) { session(id: $id) { title titleSource archived turnCount } }"

    admin.ok(
        'mutation($id: ID!) { renameSession(id: $id, title: "Router outage") { id } }',
        {"id": world.support},
    )
    admin.ok("mutation($id: ID!) { archiveSession(id: $id) { id } }", {"id": world.support})
    # An admin manages the session but speaks in it as a person, not as the agent.
    closing = {"sessionId": world.support, "content": "Closed by admin."}
    assert admin.error(APPEND, {"input": closing})["extensions"]["code"] == "FORBIDDEN"
    admin.ok(APPEND, {"input": {**closing, "role": "USER"}})
    assert world.alice.ok(view, {"id": world.support})["session"] == {
        "title": "Router outage",
        "titleSource": "MANUAL",
        "archived": True,
        "turnCount": 5,
    }
    admin.ok("mutation($id: ID!) { unarchiveSession(id: $id) { id } }", {"id": world.support})
    assert world.alice.ok(view, {"id": world.support})["session"]["archived"] is False

    assert admin.ok("mutation($id: ID!) { deleteSession(id: $id) }", {"id": world.support}) == {
        "deleteSession": True
    }
    assert world.alice.ok(view, {"id": world.support}) == {"session": None}
    assert world.alice.ok(view, {"id": world.knowledge})["session"]["title"] == "Q3 summary"


# ---------------------------------------------------------------------------------------
# No valid token: refused before anything runs.


def _claims(**changes: Any) -> dict:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "entity": "acme",
        "roles": ["user"],
        "user_type": "INTERNAL",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _bad_authorization(kind: str, secret: str) -> dict[str, str]:
    now = int(time.time())
    tokens = {
        "garbage token": "not-a-jwt",
        "signed with another secret": jwt.encode(
            _claims(), "another-secret-that-is-long-enough-0123456789", algorithm="HS256"
        ),
        "expired": jwt.encode(_claims(iat=now - 7200, exp=now - 3600), secret, algorithm="HS256"),
        "unknown role": jwt.encode(_claims(roles=["wizard"]), secret, algorithm="HS256"),
        "no entity claim": jwt.encode(_claims(entity=None), secret, algorithm="HS256"),
        "unsigned (alg none)": jwt.encode(_claims(), None, algorithm="none"),
    }
    if kind == "missing header":
        return {}
    if kind == "not a bearer token":
        return {"Authorization": "Basic YWxpY2U6c2VjcmV0"}
    return {"Authorization": f"Bearer {tokens[kind]}"}


@pytest.mark.parametrize(
    "kind",
    [
        "missing header",
        "not a bearer token",
        "garbage token",
        "signed with another secret",
        "expired",
        "unknown role",
        "no entity claim",
        "unsigned (alg none)",
    ],
)
def test_a_request_without_a_valid_token_is_refused(api: Any, settings: Any, kind: str) -> None:
    secret = settings.jwt_secret.get_secret_value()
    alice = as_(api, "alice", "acme")
    alice.ok(SEND, {"input": {"chatAppId": "support", "content": "Existing session"}})
    listing = "{ sessions(filter: {archived: null}) { edges { node { id title turnCount } } } }"
    before = alice.ok(listing)
    headers = _bad_authorization(kind, secret)

    for document, variables in (
        (listing, {}),
        (SEND, {"input": {"chatAppId": "support", "content": "Create me"}}),
        (
            APPEND,
            {"input": {"sessionId": before["sessions"]["edges"][0]["node"]["id"], "content": "x"}},
        ),
    ):
        response = api.client.post(
            "/graphql", json={"query": document, "variables": variables}, headers=headers
        )
        body = response.json()
        assert response.status_code == 401, (kind, body)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert body.get("data") is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert body["errors"][0]["message"]

    assert alice.ok(listing) == before, "a rejected request changed alice's sessions"
