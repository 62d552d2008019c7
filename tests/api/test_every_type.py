"""Every object type of the schema through the execution seam with the fast path on and
with it off: the same answers, field for field.

The app's own seam (the `fast_path` setting) and a second seam with the other setting
read the same data with the same principals, through the real resolvers, services and
store; mutations whose answer does not depend on when they ran are compared as they come,
the others once their ids and times are masked; subscription events are rendered by both
seams from the domain events the hub would hand them. The documents select every field of
every type they reach, and a type of the schema that none of them reaches fails the test:
a new type is added here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLObjectType
from starlette.testclient import TestClient
from strawberry.types.graphql import OperationType

from sessionhub.auth.tokens import TokenIssuer, TokenVerifier
from sessionhub.domain.clock import new_id
from sessionhub.domain.events import SessionDeleted, SessionUpdated, TurnAdded, TurnUpdated
from sessionhub.domain.models import NewTurn, Role, Session, SessionStatus, TitleSource, TurnRole
from sessionhub.realtime.feeds import AccessEnded, SidebarChange, SidebarKind
from sessionhub.resolvers.subscriptions import session_event, session_list_event
from sessionhub.server.app import create_app
from sessionhub.server.execution import EventRenderer, Result, Seam, SeamConfig
from sessionhub.server.settings import Settings, token_config

pytestmark = pytest.mark.both_paths

CHAT_APPS = """
[[chat_apps]]
id = "team"
name = "Team"
description = "Everything on."
[chat_apps.settings]
auto_generate_titles = false
allow_sharing = true
allow_external_sharing = true
allow_pinning = true
max_session_history = 500
retention_days = 30
[[chat_apps.templates]]
id = "kickoff"
name = "Kickoff"
description = "Starts a project."
[chat_apps.templates.agent_context]
system_prompt = "Be brief."
variables = { tone = "dry" }
[[chat_apps.templates.starter_turns]]
role = "ASSISTANT"
content = "What are we starting?"
"""

FRAGMENTS = """
fragment P on Person { __typename userId entityId external }
fragment U on TokenUsage { __typename inputTokens outputTokens cost }
fragment Settings on SessionSettings { __typename autoGenerateTitles allowSharing
  allowExternalSharing allowPinning maxSessionHistory retentionDays agentTurnsFromCollaborators }
fragment App on ChatApp { __typename id name description settings { ...Settings } }
fragment Sh on Share { __typename id sessionId granteeKind granteeEntityId granteeUserId mode
  createdBy createdAt expiresAt revokedAt revokedBy live linkToken }
fragment T on Turn { __typename id sessionId seq role authorId author { ...P } content parts
  toolInvocations { __typename id name input output status error startedAt durationMs }
  trace verification { __typename grade score notes verifiedAt verifiedBy verifier { ...P } }
  feedback { __typename userId givenBy { ...P } kind comment at } insights metadata
  usage { ...U } createdAt }
fragment Page on PageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
fragment S on Session { __typename id chatAppId ownerId title titleSource createdAt updatedAt
  lastActivityAt turnCount archived archivedAt tags participants people { ...P } status
  templateId agentContext metadata expiresAt usage { ...U } pinned chatApp { ...App }
  shares { ...Sh }
  turns(last: 5) { __typename totalCount edges { __typename cursor node { ...T } }
    nodes { id seq } pageInfo { ...Page } }
  context(maxTurns: 5) { __typename systemPrompt variables turnCount includedTurns truncated
    messages { __typename role content toolCallId name seq collaborator author { ...P }
      toolCalls { __typename id name arguments } } } }
fragment Info on SessionInfo { __typename id chatAppId ownerId title titleSource createdAt
  updatedAt lastActivityAt turnCount archived archivedAt tags participants people { ...P }
  status templateId metadata expiresAt usage { ...U } }
fragment Template on SessionTemplate { __typename id chatAppId name description systemPrompt
  variables source updatedAt starterTurns { __typename role content } }
fragment Items on ItemResult { __typename id status message }
"""

READS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("alice", "{ me { __typename userId entityId userType roles timeZone } }", None),
    ("alice", "{ chatApps { ...App } }", None),
    ("alice", "query($id: ID!) { session(id: $id) { ...S } }", {"id": "$main"}),
    ("alice", "query($id: ID!) { session(id: $id) { ...S } }", {"id": "$templated"}),
    (
        "alice",
        "{ sessions(first: 3) { __typename edges { __typename cursor dateGroup node { ...S } }"
        " pageInfo { ...Page } } }",
        None,
    ),
    ("alice", "{ pinnedSessions { id title pinned people { ...P } } }", None),
    ("alice", "{ myTags { __typename tag count } }", None),
    ("alice", 'query { templates(chatAppId: "team") { ...Template } }', None),
    (
        "alice",
        '{ searchSessions(query: "okapis") { __typename edges { __typename cursor node {'
        " __typename score titleSnippet session { id title } turns { __typename turnId seq"
        " role snippet } } } pageInfo { ...Page } } }",
        None,
    ),
    (
        "bob",
        "{ sharedWithMe(first: 3) { __typename edges { __typename cursor dateGroup node { ...S } }"
        " pageInfo { ...Page } } }",
        None,
    ),
    ("carol", "query($t: String!) { sessionByShareLink(token: $t) { ...S } }", {"t": "$link"}),
    (
        "auditor",
        "{ auditLog(first: 100) { __typename edges { __typename cursor node { __typename id"
        " actorId action target at details } } pageInfo { ...Page } } }",
        None,
    ),
]

# Mutations that answer the same whenever they run, then those whose ids and times differ.
SAME_EACH_TIME: list[tuple[str, str, dict[str, Any] | None]] = [
    (
        "alice",
        'mutation($ids: [ID!]!) { tagSessions(ids: $ids, add: ["alpha"]) { __typename'
        " results { ...Items } sessions { id tags } } }",
        {"ids": ["$main", "nope"]},
    ),
    (
        "admin",
        "mutation { runRetention(dryRun: true) { __typename dryRun removed turns"
        " chatApps { __typename chatAppId removed turns } } }",
        None,
    ),
]
MASKED: list[tuple[str, str, dict[str, Any] | None]] = [
    (
        "alice",
        'mutation { sendMessage(input: {chatAppId: "team", content: "A new one"}) {'
        " __typename createdSession session { ...S } turn { ...T } } }",
        None,
    ),
    (
        "alice",
        "mutation($ids: [ID!]!) { exportSessions(ids: $ids, format: JSON) { __typename"
        " format fileName mediaType results { ...Items } } }",
        {"ids": ["$main"]},
    ),
    (
        "admin",
        'mutation { eraseUserData(userId: "dave") { __typename userId erasedAt auditEventId'
        " sessions sessionTurns authoredTurns feedback pins shares linkVisits participations"
        " titles auditEvents } }",
        None,
    ),
]

EVENTS = """subscription($id: ID!) { sessionEvents(sessionId: $id) { __typename
  ... on TurnAdded { sessionId seq turn { ...T } }
  ... on TurnUpdated { sessionId seq turn { ...T } }
  ... on SessionUpdated { sessionId session { ...Info } }
  ... on AccessRevoked { sessionId reason }
  ... on SessionDeleted { sessionId } } }"""
SIDEBAR = """subscription { mySessions { __typename change sessionId session { ...Info } } }"""

_FRAGMENTS = {
    match.group(1): match.group(0)
    for match in re.finditer(r"fragment (\w+) on .*?(?=\nfragment |\Z)", FRAGMENTS, re.S)
}


def _with_fragments(query: str) -> str:
    """The query and the fragments it spreads, directly or through others."""
    used: list[str] = []
    pending = re.findall(r"\.\.\.(\w+)", query)
    while pending:
        name = pending.pop()
        if name in _FRAGMENTS and name not in used:
            used.append(name)
            pending += re.findall(r"\.\.\.(\w+)", _FRAGMENTS[name])
    return "\n".join([query, *(_FRAGMENTS[name] for name in used)])


_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, str) and (_TIME.match(value) or _ID.match(value)):
        return "<masked>"
    if isinstance(value, str) and value.startswith("sessionhub-export-"):
        return "<file name>"
    return value


def _typenames(value: Any, into: set[str]) -> set[str]:
    if isinstance(value, dict):
        if isinstance(value.get("__typename"), str):
            into.add(value["__typename"])
        for v in value.values():
            _typenames(v, into)
    elif isinstance(value, list):
        for v in value:
            _typenames(v, into)
    return into


class Scenario:
    """The app (its seam as the setting says) and a seam with the other setting."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.issuer = TokenIssuer(token_config(settings))
        self.verifier = TokenVerifier(token_config(settings))
        self.seam: Seam = client.app.state.seam  # type: ignore[attr-defined]
        config = self.seam.config
        self.other = Seam(
            client.app.state.schema,  # type: ignore[attr-defined]
            SeamConfig(config.documents, fast_path=not config.fast_path),
        )
        self.tokens = {
            "alice": self.issuer.issue("alice", "acme"),
            "bob": self.issuer.issue("bob", "acme"),
            "carol": self.issuer.issue("carol", "acme"),
            "dave": self.issuer.issue("dave", "acme"),
            "auditor": self.issuer.issue("aud", "acme", (Role.AUDITOR,)),
            "admin": self.issuer.issue("root", "acme", (Role.ADMIN,)),
        }
        self.values: dict[str, Any] = {}

    def post(self, who: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def run(self, seam: Seam, who: str, query: str, variables: dict[str, Any] | None) -> Any:
        principal = self.verifier.principal_from_header(f"Bearer {self.tokens[who]}")
        context = self.client.app.state.components.context(principal, "req-1")  # type: ignore[attr-defined]
        bound = {k: self._value(v) for k, v in (variables or {}).items()}
        result: Result = self.client.portal.call(  # type: ignore[union-attr]
            seam.execute,
            _with_fragments(query),
            bound,
            context,
            None,
            {OperationType.QUERY, OperationType.MUTATION},
        )
        errors = [e.formatted for e in result.errors or ()]
        assert not errors, (query[:60], errors)
        return result.data

    def _value(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if isinstance(value, str) and value.startswith("$"):
            return self.values[value[1:]]
        return value

    def render(self, seam: Seam, query: str, variables: dict[str, Any], payloads: list) -> list:
        async def rendered() -> list[Any]:
            operation = seam.check(seam.prepare(_with_fragments(query)), variables, None)
            assert not isinstance(operation, Result), operation.errors
            render = EventRenderer(seam, operation, operation.declared_variables())
            results = [await render(payload) for payload in payloads]
            assert all(not r.errors for r in results), [r.errors for r in results]
            return [r.data for r in results]

        return self.client.portal.call(rendered)  # type: ignore[union-attr]


def _make_data(s: Scenario) -> None:
    main = s.post(
        "alice",
        "mutation($i: CreateSessionInput!) { createSession(input: $i) { id } }",
        {
            "i": {
                "chatAppId": "team",
                "title": "Okapis",
                "tags": ["zoo"],
                "metadata": {"source": "test"},
                "agentContext": {"systemPrompt": "Know okapis.", "variables": {"n": 1}},
            }
        },
    )["createSession"]["id"]
    s.values["main"] = main
    s.post(
        "alice",
        "mutation($s: ID!) { sendMessage(input: {sessionId: $s, content: "
        '"How do okapis sleep?", parts: [{type: "text"}], metadata: {k: 1}}) { turn { id } } }',
        {"s": main},
    )
    answer = s.post(
        "alice",
        "mutation($i: AppendTurnInput!) { appendTurn(input: $i) { id } }",
        {
            "i": {
                "sessionId": main,
                "content": "Okapis sleep standing up.",
                "toolInvocations": [
                    {
                        "id": "call-1",
                        "name": "search",
                        "input": {"q": "okapi sleep"},
                        "output": {"hits": 3},
                        "startedAt": "2026-01-02T03:04:05+00:00",
                        "durationMs": 12.5,
                    },
                    {"name": "fetch", "status": "FAILED", "error": "timeout"},
                ],
                "trace": [{"step": "think"}],
                "insights": {"topic": "okapis"},
                "metadata": {"model": "m"},
                "usage": {"inputTokens": 10, "outputTokens": 20, "cost": 0.5},
            }
        },
    )["appendTurn"]["id"]
    s.post(
        "alice",
        'mutation($t: ID!) { setVerification(turnId: $t, input: {grade: A, score: 0.9, notes: "ok"})'
        " { id } }",
        {"t": answer},
    )
    s.post(
        "alice",
        'mutation($t: ID!) { addFeedback(turnId: $t, input: {kind: THUMBS_UP, comment: "good"})'
        " { id } }",
        {"t": answer},
    )
    share = "mutation($i: ShareInput!) { shareSession(input: $i) { id linkToken } }"
    s.post(
        "alice",
        share,
        {"i": {"sessionId": main, "granteeKind": "USER", "userId": "bob", "mode": "INTERACT"}},
    )
    s.values["link"] = s.post("alice", share, {"i": {"sessionId": main, "granteeKind": "LINK"}})[
        "shareSession"
    ]["linkToken"]
    s.post(
        "bob",
        'mutation($s: ID!) { sendMessage(input: {sessionId: $s, content: "And okapis eat?"})'
        " { turn { id } } }",
        {"s": main},
    )
    s.post("alice", "mutation($s: ID!) { pinSession(id: $s) { id } }", {"s": main})
    s.values["templated"] = s.post(
        "alice",
        'mutation { createSession(input: {chatAppId: "team", templateId: "kickoff"}) { id } }',
    )["createSession"]["id"]
    s.post(
        "admin",
        "mutation($i: CreateTemplateInput!) { createTemplate(input: $i) { id } }",
        {
            "i": {
                "chatAppId": "team",
                "name": "Review",
                "systemPrompt": "Review it.",
                "variables": {"depth": 2},
                "starterTurns": [{"role": "SYSTEM", "content": "Reviewing."}],
            }
        },
    )
    s.post(
        "dave",
        'mutation { sendMessage(input: {chatAppId: "team", content: "Mine"}) { turn { id } } }',
    )
    # One past its retention, for runRetention to report.
    components = s.client.app.state.components  # type: ignore[attr-defined]
    then = components.services.clock.now() - timedelta(days=40)
    expired = Session(
        id=new_id(),
        entity_id="acme",
        chat_app_id="team",
        owner_id="erin",
        title="Old",
        title_source=TitleSource.MANUAL,
        created_at=then,
        updated_at=then,
        last_activity_at=then,
        participants=["erin"],
        status=SessionStatus.ACTIVE,
        expires_at=then + timedelta(days=30),
    )
    first = NewTurn(
        new_id(), expired.id, TurnRole.USER, "erin", "old", then, author_entity_id="acme"
    )
    s.client.portal.call(components.store.create_session, expired, first, 100)  # type: ignore[union-attr]


@pytest.fixture
def scenario(settings_factory: Callable[..., Settings], tmp_path: Path) -> Any:
    apps = tmp_path / "chat_apps.toml"
    apps.write_text(CHAT_APPS)
    settings = settings_factory(chat_apps_file=apps)
    with TestClient(create_app(settings)) as client:
        yield Scenario(client, settings)


def test_every_type_answers_alike_with_the_fast_path_on_and_off(scenario: Scenario) -> None:
    s = scenario
    _make_data(s)
    seen: set[str] = set()
    for who, query, variables in READS + SAME_EACH_TIME:
        ours = s.run(s.seam, who, query, variables)
        other = s.run(s.other, who, query, variables)
        assert ours == other, query[:100]
        _typenames(ours, seen)
    for who, query, variables in MASKED:
        ours = s.run(s.seam, who, query, variables)
        if "eraseUserData" in query:  # dave's data is gone: give him another session
            s.post(
                "dave",
                'mutation { sendMessage(input: {chatAppId: "team", content: "Mine"}) { turn { id } } }',
            )
        other = s.run(s.other, who, query, variables)
        assert _masked(ours) == _masked(other), query[:100]
        _typenames(ours, seen)

    # Subscription events, as the hub hands them to a group's rendering.
    components = s.client.app.state.components  # type: ignore[attr-defined]
    store = components.store
    main = s.values["main"]
    session = s.client.portal.call(store.get_session, main)  # type: ignore[union-attr]
    turns = s.client.portal.call(  # type: ignore[union-attr]
        lambda: store.list_turns(main, limit=10)
    )
    assert session is not None and len(turns) >= 3
    session_events = [
        *(session_event(TurnAdded(turn)) for turn in turns),
        *(session_event(TurnUpdated(turn)) for turn in turns),
        session_event(SessionUpdated(session)),
        session_event(AccessEnded(main, "Your access to this session ended.")),
        session_event(SessionDeleted(main, "acme", "alice")),
    ]
    sidebar_events = [
        session_list_event(SidebarChange(kind, main, session))
        for kind in (SidebarKind.CREATED, SidebarKind.UPDATED, SidebarKind.SHARED)
    ] + [session_list_event(SidebarChange(SidebarKind.DELETED, main))]
    for query, variables, payloads in (
        (EVENTS, {"id": main}, session_events),
        (SIDEBAR, {}, sidebar_events),
    ):
        ours = s.render(s.seam, query, variables, payloads)
        assert ours == s.render(s.other, query, variables, payloads)
        _typenames(ours, seen)

    schema = s.seam.schema
    roots = {schema.query_type, schema.mutation_type, schema.subscription_type}
    every = {
        name
        for name, type_ in schema.type_map.items()
        if isinstance(type_, GraphQLObjectType) and type_ not in roots and not name.startswith("__")
    }
    assert every - seen == set(), "types no document here reads"
