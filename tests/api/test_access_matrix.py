"""The access matrix: every principal kind × grant × operation, each cell against the policy.

alice@acme owns a session in the chat app `knowledge` (sharing and external sharing on)
and grants it: not at all; to bob@acme (USER); to acme (ENTITY); to dan@partner
(EXTERNAL); or by a LINK, which the principal under test opens while it is live. Each
grant is READ or INTERACT and live, expired (the app's clock is moved past `expiresAt`)
or revoked (by alice). Eleven principals then try each operation. Every cell has a session
of its own (with a manual title, so that background titling cannot change it), so that no
cell sees another's writes. The sessions and grants of all the selected cells are made in
bulk (aliased mutations) on a module-scoped app with a settable clock (the list cells get
a second one, so that the lists they page through stay short), and each cell only runs
its operation and checks the result.

The expectation comes from `expected_access` below, an oracle written from the rules of
the access policy (ARCHITECTURE.md, "Access policy") and not from domain/policy.py, so
that the test can catch the implementation:

- access is the strongest of: owner → MANAGE; admin of the session's entity → MANAGE;
  service of the entity → INTERACT; auditor or entity-admin of the entity → READ; a live
  USER share to (the entity, that user id), an ENTITY share for INTERNAL users of the
  entity, an EXTERNAL share to the named (entity, user) where the chat app allows
  external sharing, and a LINK share for whoever opened it (in the entity, or beyond it
  where external sharing is on) → the share's mode. Roles never cross entities; a share
  is live when neither revoked nor expired.
- read, search (finding it by its own words), export and pin need READ, send and
  feedback INTERACT, rename, delete, share and revoke MANAGE; speak (appendTurn of an
  ASSISTANT turn) needs INTERACT and being the owner or the service of the session's
  entity (the shipped `knowledge` app keeps agent_turns_from_collaborators off); grade
  (setVerification) needs MANAGE, or INTERACT as the service of the session's entity: a
  service of another entity that a share reaches (dan@partner's service, named by the
  EXTERNAL share) interacts as a collaborator and grades nothing. Who cannot READ gets NOT_FOUND (null, or absent from a list) for everything;
  who can read but lacks the access gets FORBIDDEN.
- Before any of that, each field's @auth role gate: a principal holding none of its roles
  gets FORBIDDEN whatever the session. The oracle states the gates itself (`GATES`); a
  separate test checks that they are the ones the SDL publishes.

Outcomes are compared as words: "ok", "not found", "forbidden" (the policy refused a
principal who may read) and "gated" (a refusal that does not depend on the session: the
same request about ids that do not exist is refused the same way). A write that succeeds
must have its effect in alice's view of the session; one that fails must leave that view
exactly as it was.

On top of the oracle, two invariants are asserted in each cell and again across the whole
matrix from the observations alone: a principal who cannot read the session never gets a
policy FORBIDDEN (only a role gate), and an expired or revoked grant gives exactly what no
grant gives.

Adding an operation is one row of OPERATIONS: its probes (document,
variables, how to read the outcome), its oracle and its effect.
"""

from __future__ import annotations

import copy
import enum
import itertools
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pymongo
import pytest
from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Role, UserType
from sessionhub.schema.directives import Auth
from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings, load_settings, token_config
from tests.support.clocks import SettableClock
from tests.support.mongo_wire import MongoEcoServer

SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"

# ---------------------------------------------------------------------------------------
# Principals and grants


@dataclass(frozen=True)
class Principal:
    name: str
    user: str
    entity: str
    roles: frozenset[Role]
    user_type: UserType = UserType.INTERNAL


def _principal(name: str, user: str, entity: str, *roles: Role, **kw: Any) -> Principal:
    return Principal(name, user, entity, frozenset(roles), **kw)


OWNER = _principal("owner(alice@acme)", "alice", "acme", Role.USER)
PRINCIPALS = [
    OWNER,
    _principal("same-entity-user(bob@acme)", "bob", "acme", Role.USER),
    # The same user id as the USER grantee, in another entity.
    _principal("other-entity-user(bob@globex)", "bob", "globex", Role.USER),
    _principal(
        "external-grantee(dan@partner)", "dan", "partner", Role.USER, user_type=UserType.EXTERNAL
    ),
    _principal("auditor(aud@acme)", "aud", "acme", Role.AUDITOR),
    _principal("other-entity-admin(ea@globex)", "ea", "globex", Role.ENTITY_ADMIN),
    _principal("service(agent@acme)", "agent", "acme", Role.SERVICE),
    # The agent back end of another entity, under the name the EXTERNAL share grants to.
    _principal("other-entity-service(dan@partner)", "dan", "partner", Role.SERVICE),
    _principal("entity-admin(ea@acme)", "ea", "acme", Role.ENTITY_ADMIN),
    _principal("admin(root@acme)", "root", "acme", Role.ADMIN),
    _principal("other-admin(root@globex)", "root", "globex", Role.ADMIN),
]


class State(enum.StrEnum):
    LIVE = "live"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Grant:
    kind: str | None  # USER, ENTITY, EXTERNAL, LINK; None: no share at all
    mode: str = "READ"
    state: State = State.LIVE

    @property
    def name(self) -> str:
        return "none" if self.kind is None else f"{self.kind}-{self.mode}-{self.state}"

    @property
    def live(self) -> bool:
        return self.kind is not None and self.state is State.LIVE

    @property
    def ended(self) -> bool:
        return self.kind is not None and self.state is not State.LIVE


NO_GRANT = Grant(None)
GRANTS = [NO_GRANT] + [
    Grant(kind, mode, state)
    for kind in ("USER", "ENTITY", "EXTERNAL", "LINK")
    for mode in ("READ", "INTERACT")
    for state in State
]

# The session and its grants, as the oracle knows them.
SESSION_ENTITY = OWNER.entity
CHAT_APP = "knowledge"
EXTERNAL_SHARING = True  # knowledge allows it; checked against the app below
USER_GRANTEE = ("acme", "bob")
EXTERNAL_GRANTEE = ("partner", "dan")
OTHER_USER = "carol"  # whom `share` grants to, and whom the share `revoke` ends names

# ---------------------------------------------------------------------------------------
# The oracle


class Access(enum.IntEnum):
    NONE = 0
    READ = 1
    INTERACT = 2
    MANAGE = 3


MODE_ACCESS = {"READ": Access.READ, "INTERACT": Access.INTERACT}

PEOPLE = frozenset({Role.USER, Role.ENTITY_ADMIN, Role.AUDITOR, Role.ADMIN})
WRITERS = frozenset({Role.USER, Role.SERVICE, Role.ADMIN})
OWNERS = frozenset({Role.USER, Role.ADMIN})
GRADERS = frozenset({Role.USER, Role.SERVICE, Role.ADMIN})
OVERSEERS = frozenset({Role.AUDITOR, Role.ENTITY_ADMIN, Role.ADMIN})

# The @auth role gate of every field the matrix touches (empty: any authenticated caller),
# as the published SDL states it.
GATES: dict[str, frozenset[Role]] = {
    "session": frozenset(),
    "sessions": frozenset(),
    "sharedWithMe": PEOPLE,
    "sessionByShareLink": PEOPLE,
    "pinnedSessions": PEOPLE,
    "sendMessage": WRITERS,
    "appendTurn": WRITERS,
    "addFeedback": WRITERS,
    "setVerification": GRADERS,
    "renameSession": OWNERS,
    "deleteSession": OWNERS,
    "shareSession": OWNERS,
    "revokeShare": OWNERS,
    "pinSession": PEOPLE,
    "searchSessions": PEOPLE,
    "exportSessions": PEOPLE,
}

OK = "ok"
HIDDEN = "not found"  # NOT_FOUND, null, or absent from a list
FORBIDDEN = "forbidden"  # refused by the policy, to a principal who may read the session
GATED = "gated"  # refused whatever the session: a role gate


def passes_gate(p: Principal, field: str) -> bool:
    gate = GATES[field]
    return not gate or bool(gate & p.roles)


def is_owner(p: Principal) -> bool:
    return (p.entity, p.user) == (SESSION_ENTITY, OWNER.user)


def role_access(p: Principal) -> Access:
    if p.entity != SESSION_ENTITY:
        return Access.NONE  # roles never cross entities
    granted = [Access.NONE]
    if is_owner(p) or Role.ADMIN in p.roles:
        granted.append(Access.MANAGE)
    if Role.SERVICE in p.roles:
        granted.append(Access.INTERACT)
    if Role.AUDITOR in p.roles or Role.ENTITY_ADMIN in p.roles:
        granted.append(Access.READ)
    return max(granted)


def opens_link(p: Principal) -> bool:
    """A link opens for the session's entity, and beyond it where external sharing is on;
    sessionByShareLink is a field for people."""
    return passes_gate(p, "sessionByShareLink") and (p.entity == SESSION_ENTITY or EXTERNAL_SHARING)


def share_covers(p: Principal, g: Grant) -> bool:
    if not g.live:
        return False
    same_entity = p.entity == SESSION_ENTITY
    match g.kind:
        case "USER":
            return (p.entity, p.user) == USER_GRANTEE
        case "ENTITY":
            return same_entity and p.user_type is UserType.INTERNAL
        case "EXTERNAL":
            return EXTERNAL_SHARING and (p.entity, p.user) == EXTERNAL_GRANTEE
        case "LINK":
            return opens_link(p) and (same_entity or EXTERNAL_SHARING)
    raise AssertionError(g)


def expected_access(p: Principal, g: Grant) -> Access:
    granted = role_access(p)
    if share_covers(p, g):
        granted = max(granted, MODE_ACCESS[g.mode])
    return granted


def needs(field: str, level: Access) -> Callable[[Principal, Grant], tuple[str, ...]]:
    """The oracle of an operation on one session through `field`."""

    def expect(p: Principal, g: Grant) -> tuple[str, ...]:
        if not passes_gate(p, field):
            return (GATED,)
        access = expected_access(p, g)
        if access < Access.READ:
            return (HIDDEN,)
        if access < level:
            return (FORBIDDEN,)
        return (OK,)

    return expect


def speaks_as_agent(p: Principal, g: Grant) -> tuple[str, ...]:
    """An ASSISTANT turn goes into the owner's agent as its own words: whoever may interact
    gets this far, and then only the owner and the entity's agent back end are heard."""
    outcome = needs("appendTurn", Access.INTERACT)(p, g)
    if outcome != (OK,):
        return outcome
    agent = is_owner(p) or (p.entity == SESSION_ENTITY and Role.SERVICE in p.roles)
    return (OK,) if agent else (FORBIDDEN,)


def grades(p: Principal, g: Grant) -> tuple[str, ...]:
    """A verification grade judges the owner's agent: its managers give it, and the agent
    back end of the session's entity; whoever else may interact (a service of another
    entity included) is refused."""
    outcome = needs("setVerification", Access.INTERACT)(p, g)
    if outcome != (OK,):
        return outcome
    grader = expected_access(p, g) >= Access.MANAGE or (
        p.entity == SESSION_ENTITY and Role.SERVICE in p.roles
    )
    return (OK,) if grader else (FORBIDDEN,)


def listed(p: Principal, g: Grant) -> tuple[str, ...]:
    """(own `sessions`, `sharedWithMe`, `sessions(filter: {allOwners: true})`)."""
    own = OK if is_owner(p) else HIDDEN
    if not passes_gate(p, "sharedWithMe"):
        shared = GATED
    else:
        # Sessions others shared with the caller by a live grant that names them (or a
        # link they opened).
        shared = OK if share_covers(p, g) and not is_owner(p) else HIDDEN
    # Every owner's sessions are for auditors, entity admins and admins, of their entity.
    every = GATED if not OVERSEERS & p.roles else OK if p.entity == SESSION_ENTITY else HIDDEN
    return (own, shared, every)


# ---------------------------------------------------------------------------------------
# Talking to the API


class Http:
    """Requests to the running app (lifespan started by its TestClient), sent through ASGI
    from the app's own event loop: one thread hop a request instead of several, which
    halves the cost of the ~5,000 requests the matrix makes."""

    def __init__(self, client: TestClient) -> None:
        self.portal = client.portal
        assert self.portal is not None, "start the TestClient first"
        self.client = self.portal.call(self._open, client.app)

    @staticmethod
    async def _open(app: Any) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://testserver"
        )

    async def _post(self, token: str, query: str, variables: dict) -> dict:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        return response.json()

    def post(self, token: str, query: str, variables: dict) -> dict:
        return self.portal.call(self._post, token, query, variables)

    def close(self) -> None:
        self.portal.call(self.client.aclose)


class Caller:
    def __init__(self, http: Http, token: str) -> None:
        self.http = http
        self.token = token

    def post(self, query: str, variables: dict | None = None) -> dict:
        return self.http.post(self.token, query, variables or {})

    def ok(self, query: str, variables: dict | None = None) -> dict:
        body = self.post(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]


@dataclass(frozen=True)
class Call:
    """One root field call of a batch: `field(name: $var, ...) { selection }`."""

    field: str
    args: dict[str, tuple[str, Any]]  # argument -> (GraphQL type, value)
    selection: str = ""


ALIASES_PER_REQUEST = 40  # the app allows 50 aliases in a document


def run_calls(caller: Caller, operation: str, calls: list[Call]) -> list[tuple[Any, dict | None]]:
    """Each call's (value, error), sent as aliased fields, ALIASES_PER_REQUEST at a time.
    In a mutation, a failed non-null field nulls the whole `data`: callers expect none."""
    results: list[tuple[Any, dict | None]] = []
    for start in range(0, len(calls), ALIASES_PER_REQUEST):
        chunk = calls[start : start + ALIASES_PER_REQUEST]
        declarations, fields, variables = [], [], {}
        for i, call in enumerate(chunk):
            arguments = []
            for name, (type_, value) in call.args.items():
                declarations.append(f"${name}{i}: {type_}")
                variables[f"{name}{i}"] = value
                arguments.append(f"{name}: ${name}{i}")
            selection = f" {{ {call.selection} }}" if call.selection else ""
            fields.append(f"a{i}: {call.field}({', '.join(arguments)}){selection}")
        body = caller.post(
            f"{operation}({', '.join(declarations)}) {{ {' '.join(fields)} }}", variables
        )
        errors = body.get("errors") or []
        if errors and len(chunk) > 1 and operation == "query":
            # A failed non-null field nulls `data` and may cut the other fields short
            # before they report: ask each one alone (queries only, which may be repeated).
            for call in chunk:
                results.extend(run_calls(caller, operation, [call]))
            continue
        by_alias = {e["path"][0]: e for e in errors if e.get("path")}
        assert len(by_alias) == len(errors), body
        data = body.get("data") or {}
        results.extend((data.get(f"a{i}"), by_alias.get(f"a{i}")) for i in range(len(chunk)))
    return results


def code_of(error: dict) -> str:
    code = error["extensions"]["code"]
    return {"NOT_FOUND": HIDDEN, "FORBIDDEN": FORBIDDEN}.get(code, code)


# ---------------------------------------------------------------------------------------
# Operations: probes (document, variables, how to read the outcome), oracle, effect


@dataclass(frozen=True)
class Target:
    """The ids one cell works on."""

    session: str
    turn: str
    tag: str
    spare_share: str = ""  # a second share by alice, for `revoke` to end

    @classmethod
    def missing(cls) -> Target:
        return cls(str(uuid.uuid4()), str(uuid.uuid4()), "absent", str(uuid.uuid4()))


@dataclass(frozen=True)
class Probe:
    field: str  # the root field, whose @auth gate applies
    document: str
    variables: Callable[[Target], dict]
    read: Callable[[Caller, Probe, Target], str]


def read_mutation(caller: Caller, probe: Probe, target: Target) -> str:
    body = caller.post(probe.document, probe.variables(target))
    if body.get("errors"):
        assert body.get("data") is None, f"a refused {probe.field} came with data: {body}"
        return code_of(body["errors"][0])
    assert body["data"][probe.field], body
    return OK


def read_node(caller: Caller, probe: Probe, target: Target) -> str:
    body = caller.post(probe.document, probe.variables(target))
    if body.get("errors"):
        return code_of(body["errors"][0])
    node = body["data"][probe.field]
    if node is None:
        return HIDDEN
    assert node["id"] == target.session, body
    return OK


def read_listing(caller: Caller, probe: Probe, target: Target) -> str:
    """Whether the session is on any page of the list. A refused listing does not look at
    any session: it is a gate."""
    ids: list[str] = []
    after = None
    for _ in range(100):
        body = caller.post(probe.document, {**probe.variables(target), "after": after})
        if body.get("errors"):
            code = code_of(body["errors"][0])
            return GATED if code == FORBIDDEN else code
        page = body["data"][probe.field]
        ids += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    else:
        raise AssertionError(f"{probe.field} pages without end")
    return OK if target.session in ids else HIDDEN


def read_search(caller: Caller, probe: Probe, target: Target) -> str:
    """Whether a search for the session's own words finds it, on any page."""
    ids: list[str] = []
    after = None
    for _ in range(100):
        body = caller.post(probe.document, {**probe.variables(target), "after": after})
        if body.get("errors"):
            code = code_of(body["errors"][0])
            return GATED if code == FORBIDDEN else code
        page = body["data"][probe.field]
        ids += [edge["node"]["session"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    else:
        raise AssertionError(f"{probe.field} pages without end")
    return OK if target.session in ids else HIDDEN


def read_export(caller: Caller, probe: Probe, target: Target) -> str:
    """Whether the session was exported: one result per id, DONE or NOT_FOUND."""
    body = caller.post(probe.document, probe.variables(target))
    if body.get("errors"):
        return code_of(body["errors"][0])
    (result,) = body["data"][probe.field]["results"]
    return OK if result["status"] == "DONE" else HIDDEN


def observe(caller: Caller, probe: Probe, target: Target) -> str:
    outcome = probe.read(caller, probe, target)
    # Refused as well for ids that exist nowhere: the refusal never looked at the session.
    if (
        outcome == FORBIDDEN
        and probe.read not in (read_listing, read_search)
        and probe.read(caller, probe, Target.missing()) == FORBIDDEN
    ):
        return GATED
    return outcome


PAGE = "edges { node { id } } pageInfo { hasNextPage endCursor }"
MESSAGE = "A message from the principal under test."
COMMENT = "Feedback from the principal under test."
NOTES = "Graded by the principal under test."
NEW_TITLE = "Renamed by the principal under test"
SNAPSHOT = (
    "id title titleSource turnCount tags "
    "turns(first: 100) { nodes { id seq authorId content feedback { userId kind comment } "
    "verification { grade notes verifiedBy } } } "
    "shares { id granteeKind granteeEntityId granteeUserId mode live revokedAt revokedBy }"
)


@dataclass(frozen=True)
class Change:
    """What a write cell knows when it checks alice's view afterwards."""

    principal: Principal
    caller: Caller
    target: Target
    before: dict
    after: dict | None
    succeeded: bool


def _new(c: Change, items: Callable[[dict], list[dict]]) -> list[dict]:
    known = {item["id"] for item in items(c.before)}
    return [item for item in items(c.after or c.before) if item["id"] not in known]


def _turns(view: dict) -> list[dict]:
    return view["turns"]["nodes"]


def _shares(view: dict) -> list[dict]:
    return view["shares"]


def sent(c: Change) -> dict | None:
    if not c.succeeded:
        return c.before
    expected = copy.deepcopy(c.before)
    expected["turnCount"] += 1
    new = _new(c, _turns)
    _turns(expected).append(
        {
            "id": new[0]["id"] if len(new) == 1 else "<exactly one new turn>",
            "seq": expected["turnCount"],
            "authorId": c.principal.user,
            "content": MESSAGE,
            "feedback": [],
            "verification": None,
        }
    )
    return expected


def given_feedback(c: Change) -> dict | None:
    if not c.succeeded:
        return c.before
    expected = copy.deepcopy(c.before)
    _turns(expected)[0]["feedback"].append(
        {"userId": c.principal.user, "kind": "OTHER", "comment": COMMENT}
    )
    return expected


def graded(c: Change) -> dict | None:
    if not c.succeeded:
        return c.before
    expected = copy.deepcopy(c.before)
    _turns(expected)[0]["verification"] = {
        "grade": "C",
        "notes": NOTES,
        "verifiedBy": c.principal.user,
    }
    return expected


def renamed(c: Change) -> dict | None:
    if not c.succeeded:
        return c.before
    return {**c.before, "title": NEW_TITLE, "titleSource": "MANUAL"}


def deleted(c: Change) -> dict | None:
    return None if c.succeeded else c.before


def shared(c: Change) -> dict | None:
    if not c.succeeded:
        return c.before
    expected = copy.deepcopy(c.before)
    new = _new(c, _shares)
    _shares(expected).append(
        {
            "id": new[0]["id"] if len(new) == 1 else "<exactly one new share>",
            "granteeKind": "USER",
            "granteeEntityId": SESSION_ENTITY,
            "granteeUserId": OTHER_USER,
            "mode": "READ",
            "live": True,
            "revokedAt": None,
            "revokedBy": None,
        }
    )
    return normalised(expected)


def revoked(c: Change) -> dict | None:
    if not c.succeeded:
        return c.before
    expected = copy.deepcopy(c.before)
    (after,) = [s for s in _shares(c.after or c.before) if s["id"] == c.target.spare_share]
    for share in _shares(expected):
        if share["id"] == c.target.spare_share:
            assert share["live"], "the share to revoke was not live to begin with"
            share.update(
                live=False, revokedAt=after["revokedAt"] or "<set>", revokedBy=c.principal.user
            )
    return expected


def pinned(c: Change) -> dict | None:
    """Pins are the caller's own: alice's view is unchanged either way, and the caller's
    pinned list holds the session exactly when the pin succeeded."""
    if passes_gate(c.principal, "pinnedSessions"):
        pins = c.caller.ok("{ pinnedSessions { id } }")["pinnedSessions"]
        assert (c.target.session in {s["id"] for s in pins}) == c.succeeded, pins
    return c.before


def _session_id(t: Target) -> dict:
    return {"id": t.session}


@dataclass(frozen=True)
class Operation:
    probes: tuple[Probe, ...]
    expect: Callable[[Principal, Grant], tuple[str, ...]]  # the oracle: one outcome a probe
    effect: Callable[[Change], dict | None] | None = None  # alice's view after; None: a query


def _mutation(field: str, document: str, variables: Callable[[Target], dict]) -> Probe:
    return Probe(field, document, variables, read_mutation)


OPERATIONS: dict[str, Operation] = {
    "read": Operation(
        (Probe("session", "query($id: ID!) { session(id: $id) { id } }", _session_id, read_node),),
        needs("session", Access.READ),
    ),
    "list": Operation(
        (
            Probe(
                "sessions",
                f"query($tag: String!, $after: String) {{ sessions(filter: {{tag: $tag}}, "
                f"first: 100, after: $after) {{ {PAGE} }} }}",
                lambda t: {"tag": t.tag},
                read_listing,
            ),
            Probe(
                "sharedWithMe",
                f"query($after: String) {{ sharedWithMe(first: 100, after: $after) {{ {PAGE} }} }}",
                lambda t: {},
                read_listing,
            ),
            Probe(
                "sessions",
                f"query($tag: String!, $after: String) {{ sessions(filter: {{tag: $tag, "
                f"allOwners: true}}, first: 100, after: $after) {{ {PAGE} }} }}",
                lambda t: {"tag": t.tag},
                read_listing,
            ),
        ),
        listed,
    ),
    "send": Operation(
        (
            _mutation(
                "sendMessage",
                "mutation($input: SendMessageInput!) { sendMessage(input: $input) "
                "{ session { id } turn { id } } }",
                lambda t: {"input": {"sessionId": t.session, "content": MESSAGE}},
            ),
        ),
        needs("sendMessage", Access.INTERACT),
        sent,
    ),
    "speak": Operation(
        (
            _mutation(
                "appendTurn",
                "mutation($input: AppendTurnInput!) { appendTurn(input: $input) { id } }",
                lambda t: {
                    "input": {"sessionId": t.session, "role": "ASSISTANT", "content": MESSAGE}
                },
            ),
        ),
        speaks_as_agent,
        sent,
    ),
    "feedback": Operation(
        (
            _mutation(
                "addFeedback",
                "mutation($turn: ID!, $comment: String!) { addFeedback(turnId: $turn, "
                "input: {kind: OTHER, comment: $comment}) { id } }",
                lambda t: {"turn": t.turn, "comment": COMMENT},
            ),
        ),
        needs("addFeedback", Access.INTERACT),
        given_feedback,
    ),
    "grade": Operation(
        (
            _mutation(
                "setVerification",
                "mutation($turn: ID!, $notes: String!) { setVerification(turnId: $turn, "
                "input: {grade: C, notes: $notes}) { id } }",
                lambda t: {"turn": t.turn, "notes": NOTES},
            ),
        ),
        grades,
        graded,
    ),
    "rename": Operation(
        (
            _mutation(
                "renameSession",
                "mutation($id: ID!, $title: String!) { renameSession(id: $id, title: $title) "
                "{ id } }",
                lambda t: {"id": t.session, "title": NEW_TITLE},
            ),
        ),
        needs("renameSession", Access.MANAGE),
        renamed,
    ),
    "delete": Operation(
        (_mutation("deleteSession", "mutation($id: ID!) { deleteSession(id: $id) }", _session_id),),
        needs("deleteSession", Access.MANAGE),
        deleted,
    ),
    "share": Operation(
        (
            _mutation(
                "shareSession",
                "mutation($id: ID!, $user: ID!) { shareSession(input: {sessionId: $id, "
                "granteeKind: USER, userId: $user}) { id } }",
                lambda t: {"id": t.session, "user": OTHER_USER},
            ),
        ),
        needs("shareSession", Access.MANAGE),
        shared,
    ),
    "revoke": Operation(
        (
            _mutation(
                "revokeShare",
                "mutation($id: ID!) { revokeShare(id: $id) { id } }",
                lambda t: {"id": t.spare_share},
            ),
        ),
        needs("revokeShare", Access.MANAGE),
        revoked,
    ),
    "search": Operation(
        (
            Probe(
                "searchSessions",
                "query($q: String!, $tag: String!, $after: String) { searchSessions(query: $q, "
                "filter: {tags: [$tag]}, first: 100, after: $after) "
                "{ edges { node { session { id } } } pageInfo { hasNextPage endCursor } } }",
                # The title "Cell cell-N" holds the phrase "cell N"; the tag narrows to it.
                lambda t: {"q": '"' + t.tag.replace("-", " ") + '"', "tag": t.tag},
                read_search,
            ),
        ),
        needs("searchSessions", Access.READ),
    ),
    "export": Operation(
        (
            Probe(
                "exportSessions",
                "mutation($id: ID!) { exportSessions(ids: [$id], format: JSON) "
                "{ results { status } } }",
                _session_id,
                read_export,
            ),
        ),
        needs("exportSessions", Access.READ),
    ),
    "pin": Operation(
        (
            _mutation(
                "pinSession",
                "mutation($id: ID!) { pinSession(id: $id) { id pinned } }",
                _session_id,
            ),
        ),
        needs("pinSession", Access.READ),
        pinned,
    ),
}

# ---------------------------------------------------------------------------------------
# Cells


@dataclass(frozen=True)
class Cell:
    principal: Principal
    grant: Grant
    op: str

    @property
    def id(self) -> str:
        return f"{self.principal.name}/{self.grant.name}/{self.op}"

    @property
    def world(self) -> str:
        # Listings see every session of the store: they get a store of their own, so that
        # they hold the few sessions of the list cells and no more.
        return "lists" if self.op == "list" else "writes"


CELLS = [Cell(p, g, op) for p in PRINCIPALS for g in GRANTS for op in OPERATIONS]

# Cells where the app disagrees with the policy: (which cells, why). Each is a strict xfail.
KNOWN_DISAGREEMENTS: list[tuple[Callable[[Cell], bool], str]] = []


def _disagreement(cell: Cell) -> str | None:
    reasons = [reason for matches, reason in KNOWN_DISAGREEMENTS if matches(cell)]
    return "; ".join(reasons) or None


# One test process runs all the cells of a backend (`--dist loadgroup` in `make test`): the
# first cell it runs prepares the sessions and grants of every cell in bulk, and a second
# process would prepare them all again for the few cells it got.
SQLITE_WORLDS = pytest.mark.xdist_group("access-matrix-sqlite")
MONGO_WORLDS = pytest.mark.xdist_group("access-matrix-mongo")


def _param(backend: str, cell: Cell) -> Any:
    reason = _disagreement(cell)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    marks.append(SQLITE_WORLDS if backend == "sqlite" else MONGO_WORLDS)
    return pytest.param(backend, cell, id=f"{backend}-{cell.id}", marks=marks)


# ---------------------------------------------------------------------------------------
# The worlds: an app with a settable clock, and the sessions and grants of the cells


def normalised(view: dict | None) -> dict | None:
    if view is not None:
        view["shares"].sort(key=lambda s: s["id"])
    return view


@dataclass
class Prepared:
    target: Target
    before: dict | None = None  # alice's view when the cell starts (cells that write)
    opened: str | None = None  # opening the LINK while it was live
    reopened: str | None = None  # opening it again after it ended


class World:
    def __init__(
        self, client: TestClient, http: Http, settings: Settings, clock: SettableClock
    ) -> None:
        self.client = client
        self.http = http
        self.issuer = TokenIssuer(token_config(settings))
        self.clock = clock
        self.prepared: dict[str, Prepared] = {}
        self._tokens: dict[Principal, str] = {}
        self._tags = itertools.count()

    def caller(self, p: Principal) -> Caller:
        if p not in self._tokens:
            self._tokens[p] = self.issuer.issue(
                p.user, p.entity, sorted(p.roles), user_type=p.user_type
            )
        return Caller(self.http, self._tokens[p])

    def snapshot(self, session_id: str) -> dict | None:
        data = self.caller(OWNER).ok(
            f"query($id: ID!) {{ session(id: $id) {{ {SNAPSHOT} }} }}", {"id": session_id}
        )
        return normalised(data["session"])

    def prepare(self, cells: list[Cell]) -> None:
        """Sessions and grants for `cells`, made in bulk: created and shared at `start`,
        links opened while live, grants revoked, then the clock moved past the expiry."""
        cells = [c for c in cells if c.id not in self.prepared]
        if not cells:
            return
        start = self.clock.current + timedelta(days=1)
        self.clock.current = start
        alice = self.caller(OWNER)

        # A session with a manual title (which automatic titles, made in the background,
        # never replace) and one turn for each cell; the list cells' sessions carry a tag
        # of their own, by which the session lists are narrowed to them.
        tags = {c.id: f"cell-{next(self._tags)}" for c in cells}
        created = run_calls(
            alice,
            "mutation",
            [
                Call(
                    "createSession",
                    {
                        "input": (
                            "CreateSessionInput!",
                            {
                                "chatAppId": CHAT_APP,
                                "title": f"Cell {tags[c.id]}",
                                "tags": [tags[c.id]] if c.op in ("list", "search") else [],
                            },
                        )
                    },
                    "id",
                )
                for c in cells
            ],
        )
        assert all(error is None for _, error in created), created
        sent_ = run_calls(
            alice,
            "mutation",
            [
                Call(
                    "sendMessage",
                    {"input": ("SendMessageInput!", {"sessionId": value["id"], "content": c.id})},
                    "session { id } turn { id }",
                )
                for c, (value, _) in zip(cells, created, strict=True)
            ],
        )
        assert all(error is None for _, error in sent_), sent_
        targets = {
            c.id: Target(value["session"]["id"], value["turn"]["id"], tags[c.id])
            for c, (value, _) in zip(cells, sent_, strict=True)
        }

        # The grant of each cell, and for `revoke` a second share to end.
        calls, owners = [], []
        for c in cells:
            session_id = targets[c.id].session
            if c.grant.kind is not None:
                expires = start + (
                    timedelta(hours=1) if c.grant.state is State.EXPIRED else timedelta(days=30)
                )
                grant_input = {
                    "sessionId": session_id,
                    "granteeKind": c.grant.kind,
                    "mode": c.grant.mode,
                    "expiresAt": expires.isoformat(),
                }
                if c.grant.kind == "USER":
                    grant_input["userId"] = USER_GRANTEE[1]
                if c.grant.kind == "EXTERNAL":
                    grant_input["entityId"], grant_input["userId"] = EXTERNAL_GRANTEE
                calls.append(
                    Call("shareSession", {"input": ("ShareInput!", grant_input)}, "id linkToken")
                )
                owners.append((c.id, "grant"))
            if c.op == "revoke":
                spare = {"sessionId": session_id, "granteeKind": "USER", "userId": OTHER_USER}
                calls.append(Call("shareSession", {"input": ("ShareInput!", spare)}, "id"))
                owners.append((c.id, "spare"))
        made = run_calls(alice, "mutation", calls)
        assert all(error is None for _, error in made), made
        grants: dict[str, dict] = {}
        for (cell_id, role), (value, _) in zip(owners, made, strict=True):
            if role == "grant":
                grants[cell_id] = value
            else:
                t = targets[cell_id]
                targets[cell_id] = Target(t.session, t.turn, t.tag, value["id"])
        prepared = {c.id: Prepared(targets[c.id]) for c in cells}

        links = [c for c in cells if c.grant.kind == "LINK"]
        for c, outcome in self._open_links(links, grants, targets):
            prepared[c.id].opened = outcome

        ended = [c for c in cells if c.grant.state is State.REVOKED and c.grant.kind]
        revoked_ = run_calls(
            alice,
            "mutation",
            [Call("revokeShare", {"id": ("ID!", grants[c.id]["id"])}, "live") for c in ended],
        )
        assert all(error is None and value == {"live": False} for value, error in revoked_), (
            revoked_
        )

        self.clock.current = start + timedelta(hours=2)  # past every EXPIRED grant's end
        for c, outcome in self._open_links([c for c in links if c.grant.ended], grants, targets):
            prepared[c.id].reopened = outcome

        writers = [c for c in cells if OPERATIONS[c.op].effect is not None]
        views = run_calls(
            alice,
            "query",
            [Call("session", {"id": ("ID!", targets[c.id].session)}, SNAPSHOT) for c in writers],
        )
        for c, (view, error) in zip(writers, views, strict=True):
            assert error is None and view is not None, (c.id, error)
            prepared[c.id].before = normalised(view)
        self.prepared.update(prepared)

    def _open_links(
        self, cells: list[Cell], grants: dict[str, dict], targets: dict[str, Target]
    ) -> Iterator[tuple[Cell, str]]:
        """Each cell's principal opens its cell's link: "ok", "not found" or "gated"."""
        by_principal: dict[Principal, list[Cell]] = {}
        for c in cells:
            by_principal.setdefault(c.principal, []).append(c)
        for p, mine in by_principal.items():
            answers = run_calls(
                self.caller(p),
                "query",
                [
                    Call(
                        "sessionByShareLink",
                        {"token": ("String!", grants[c.id]["linkToken"])},
                        "id",
                    )
                    for c in mine
                ],
            )
            for c, (value, error) in zip(mine, answers, strict=True):
                if error is not None:
                    code = code_of(error)
                    yield c, GATED if code == FORBIDDEN else code
                else:
                    assert value is None or value["id"] == targets[c.id].session, value
                    yield c, OK


class Worlds:
    """One app per world, started on first use; the cells of a world are prepared together,
    and each cell's operation runs once, whichever test asks for its outcome first."""

    def __init__(
        self,
        stack: ExitStack,
        root: Path,
        selected: list[Cell],
        database_url: Callable[[Path], str],
    ) -> None:
        self.stack = stack
        self.root = root
        self.selected = selected
        self.database_url = database_url
        self.started: dict[str, World] = {}
        self.observed: dict[str, tuple[str, ...]] = {}

    def get(self, name: str) -> World:
        if name not in self.started:
            folder = self.root / name
            folder.mkdir(parents=True)
            settings = load_settings(
                database_url=self.database_url(folder),
                jwt_secret=SECRET,
                dev_secret_file=folder / "dev-secret",
                # Expiry must hold at once, not when the sweep records it.
                share_expiry_sweep_seconds=3600,
                # Each principal opens the links of hundreds of cells; the rate of link
                # opens is tests/security/test_speakers_probing.py's subject, not this one's.
                link_open_rate="100000/minute",
                log_level="warning",
            )
            clock = SettableClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
            client = self.stack.enter_context(TestClient(create_app(settings, clock=clock)))
            http = Http(client)
            self.stack.callback(http.close)
            self.started[name] = World(client, http, settings, clock)
        return self.started[name]

    def prepare(self, cells: list[Cell]) -> None:
        by_world: dict[str, dict[str, Cell]] = {}
        for c in cells:
            by_world.setdefault(c.world, {})[c.id] = c
        for name, mine in by_world.items():
            self.get(name).prepare(list(mine.values()))

    def observe(self, cell: Cell) -> tuple[World, Prepared, tuple[str, ...]]:
        """The cell's world, its sessions and grants, and what its operation answered."""
        world = self.get(cell.world)
        if cell.id not in world.prepared:
            self.prepare([*self.selected, cell])
        prepared = world.prepared[cell.id]
        if cell.id not in self.observed:
            caller = world.caller(cell.principal)
            self.observed[cell.id] = tuple(
                observe(caller, probe, prepared.target) for probe in OPERATIONS[cell.op].probes
            )
        return world, prepared, self.observed[cell.id]


class Backends:
    """The worlds of each backend the matrix runs on, made on first use."""

    def __init__(self, stack: ExitStack, root: Path, selected: dict[str, list[Cell]]) -> None:
        self.stack = stack
        self.root = root
        self.selected = selected
        self.worlds: dict[str, Worlds] = {}

    def sqlite(self) -> Worlds:
        if "sqlite" not in self.worlds:
            self.worlds["sqlite"] = Worlds(
                self.stack,
                self.root / "sqlite",
                self.selected.get("sqlite", []),
                lambda folder: f"sqlite:///{folder / 'sessionhub.db'}",
            )
        return self.worlds["sqlite"]

    def mongo(self, server: MongoEcoServer) -> Worlds:
        if "mongo" not in self.worlds:
            databases: list[str] = []

            def database_url(folder: Path) -> str:
                databases.append(f"matrix_{uuid.uuid4().hex[:12]}_{folder.name}")
                return server.url(databases[-1])

            def drop() -> None:
                with pymongo.MongoClient(server.url("admin")) as client:
                    for name in databases:
                        client.drop_database(name)

            self.stack.callback(drop)
            self.worlds["mongo"] = Worlds(
                self.stack, self.root / "mongo", self.selected.get("mongo", []), database_url
            )
        return self.worlds["mongo"]


@pytest.fixture(scope="module")
def backends(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backends]:
    selected: dict[str, list[Cell]] = {}
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        cell = callspec.params.get("cell") if callspec else None
        if isinstance(cell, Cell):
            selected.setdefault(callspec.params["backend"], []).append(cell)
    with ExitStack() as stack:
        yield Backends(stack, tmp_path_factory.mktemp("access-matrix"), selected)


@pytest.fixture(scope="module")
def worlds(backends: Backends) -> Worlds:
    """The worlds on SQLite, which run every cell."""
    return backends.sqlite()


# ---------------------------------------------------------------------------------------
# The contract the oracle assumes


def test_the_walked_operations_are_the_expected_ones() -> None:
    assert set(OPERATIONS) == {
        "read",
        "list",
        "send",
        "speak",
        "feedback",
        "grade",
        "rename",
        "delete",
        "share",
        "revoke",
        "pin",
        "search",
        "export",
    }
    probed = {probe.field for op in OPERATIONS.values() for probe in op.probes}
    assert probed <= set(GATES), "the oracle needs the role gate of every probed field"
    assert len(CELLS) == len(PRINCIPALS) * len(GRANTS) * len(OPERATIONS) == 3575


def role_gate(app: Any, field: str) -> tuple[frozenset[Role], Any]:
    """The roles and user type the field's @auth directive requires."""
    schema = app.state.schema
    for root in (schema.query, schema.mutation):
        for definition in root.__strawberry_definition__.fields:
            if schema.config.name_converter.get_graphql_name(definition) == field:
                (auth,) = [d for d in definition.directives if isinstance(d, Auth)]
                return frozenset(auth.requires or ()), auth.user_type
    raise AssertionError(f"no root field {field}")


@SQLITE_WORLDS
def test_the_oracles_role_gates_are_the_published_ones(worlds: Worlds) -> None:
    app = worlds.get("writes").client.app
    for field_name, roles in GATES.items():
        published, user_type = role_gate(app, field_name)
        assert published == roles, field_name
        assert not user_type, f"{field_name} is gated by user type too; the oracle does not know"


@SQLITE_WORLDS
def test_the_chat_app_allows_what_the_oracle_assumes(worlds: Worlds) -> None:
    apps = (
        worlds.get("writes")
        .caller(OWNER)
        .ok("{ chatApps { id settings { allowSharing allowExternalSharing allowPinning } } }")[
            "chatApps"
        ]
    )
    (knowledge,) = [a["settings"] for a in apps if a["id"] == CHAT_APP]
    assert knowledge == {
        "allowSharing": True,
        "allowExternalSharing": EXTERNAL_SHARING,
        "allowPinning": True,
    }


# ---------------------------------------------------------------------------------------
# The matrix


# Every cell on SQLite; on MongoDB over the wire, a seeded sample (mongoeco, a Python
# server, takes about ten times SQLite's time per request).
MONGO_CELLS = sorted(random.Random(20261207).sample(CELLS, 600), key=CELLS.index)


@pytest.mark.parametrize(
    "backend, cell",
    [_param("sqlite", c) for c in CELLS] + [_param("mongo", c) for c in MONGO_CELLS],
)
def test_access_cell(
    backends: Backends, backend: str, cell: Cell, request: pytest.FixtureRequest
) -> None:
    worlds = (
        backends.sqlite()
        if backend == "sqlite"
        else backends.mongo(request.getfixturevalue("mongoeco"))
    )
    world, prepared, observed = worlds.observe(cell)
    p, g, op = cell.principal, cell.grant, OPERATIONS[cell.op]

    if g.kind == "LINK":
        assert prepared.opened == (OK if opens_link(p) else GATED), "opening the live link"
        if g.ended:
            assert prepared.reopened == (GATED if not opens_link(p) else HIDDEN), (
                f"opening the link once {g.state}"
            )

    if expected_access(p, g) < Access.READ:
        assert FORBIDDEN not in observed, (
            f"{observed}: a principal who cannot read the session was told it exists"
        )
    if g.ended:
        assert observed == op.expect(p, NO_GRANT), (
            f"{observed}: a {g.state} grant gave more than the principal's role-based access"
        )
    assert observed == op.expect(p, g), f"the policy grants {expected_access(p, g).name}"

    if op.effect is not None:
        assert prepared.before is not None
        after = world.snapshot(prepared.target.session)
        change = Change(
            p, world.caller(p), prepared.target, prepared.before, after, observed == (OK,)
        )
        assert after == op.effect(change), "alice's view of the session after the operation"


@SQLITE_WORLDS
def test_the_invariants_hold_across_the_whole_matrix(worlds: Worlds) -> None:
    """From the observations alone, whatever the oracle says: where `read` finds nothing,
    no operation answers a policy FORBIDDEN; an ended grant answers as no grant does.
    (Run after the cells, it reuses their outcomes; alone, it runs every operation.)"""
    worlds.prepare(CELLS)
    observed = {c.id: worlds.observe(c)[2] for c in CELLS}
    excused = {c.id for c in CELLS if _disagreement(c)}
    leaks, widened = [], []
    for p in PRINCIPALS:
        for g in GRANTS:
            unreadable = observed[Cell(p, g, "read").id] == (HIDDEN,)
            for name in OPERATIONS:
                cell = Cell(p, g, name)
                if cell.id in excused:
                    continue
                seen = observed[cell.id]
                if unreadable and FORBIDDEN in seen:
                    leaks.append((cell.id, seen))
                if g.ended and seen != observed[Cell(p, NO_GRANT, name).id]:
                    widened.append((cell.id, seen, observed[Cell(p, NO_GRANT, name).id]))
    assert leaks == [], "FORBIDDEN to principals who cannot read the session"
    assert widened == [], "ended grants that answer differently from no grant"
