"""The session lifecycle through GraphQL, as a frontend and an agent back end use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Role
from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings, token_config
from tests.support.clocks import SettableClock

pytestmark = pytest.mark.both_paths

SEND = """
mutation($input: SendMessageInput!) {
  sendMessage(input: $input) { createdSession session { id title titleSource turnCount } turn { id seq } }
}"""
APPEND = "mutation($input: AppendTurnInput!) { appendTurn(input: $input) { id seq authorId } }"
LIST = """
query($first: Int, $after: String, $filter: SessionFilter, $tz: String) {
  sessions(first: $first, after: $after, filter: $filter, timeZone: $tz) {
    edges { cursor dateGroup node { id title pinned archived tags } }
    pageInfo { hasNextPage endCursor }
  }
}"""
FULL_TURN = """
id sessionId seq role authorId content parts trace insights metadata createdAt
toolInvocations { id name input output status error startedAt durationMs }
verification { grade score notes verifiedAt verifiedBy }
feedback { userId kind comment at }
usage { inputTokens outputTokens cost }
"""


def start(alice, app: str = "knowledge", text: str = "Hello") -> str:
    data = alice.ok(SEND, {"input": {"chatAppId": app, "content": text}})
    return data["sendMessage"]["session"]["id"]


def test_create_session_explicitly(api) -> None:
    alice = api.as_("alice", "acme")
    created = alice.ok(
        """mutation { createSession(input: {chatAppId: "knowledge", title: "Q3 planning",
             tags: ["Planning", "q3"], metadata: {source: "api"},
             agentContext: {systemPrompt: "You plan.", variables: {quarter: 3}}}) {
           id title titleSource turnCount tags metadata agentContext participants ownerId
           chatApp { id settings { allowSharing maxSessionHistory } } } }"""
    )["createSession"]
    assert created["title"] == "Q3 planning" and created["titleSource"] == "MANUAL"
    assert created["turnCount"] == 0 and created["tags"] == ["planning", "q3"]
    assert created["metadata"] == {"source": "api"}
    assert created["agentContext"]["variables"] == {"quarter": 3}
    assert created["participants"] == ["alice"] and created["ownerId"] == "alice"
    assert created["chatApp"]["settings"]["allowSharing"] is True
    listed = alice.ok(LIST)["sessions"]["edges"]
    assert [e["node"]["id"] for e in listed] == [created["id"]]


def test_send_message_creates_then_appends(api) -> None:
    alice = api.as_("alice", "acme")
    first = alice.ok(SEND, {"input": {"chatAppId": "support", "content": "My printer is jammed"}})
    payload = first["sendMessage"]
    assert payload["createdSession"] is True and payload["turn"]["seq"] == 1
    assert payload["session"]["title"] == "My printer is jammed"
    sid = payload["session"]["id"]
    second = alice.ok(SEND, {"input": {"sessionId": sid, "content": "Still jammed"}})["sendMessage"]
    assert second["createdSession"] is False
    assert (second["turn"]["seq"], second["session"]["turnCount"]) == (2, 2)


def test_a_turn_reads_back_as_written_through_graphql(api) -> None:
    alice = api.as_("alice", "acme")
    agent = api.as_("agent", "acme", Role.SERVICE)
    sid = start(alice)
    written = {
        "sessionId": sid,
        "role": "ASSISTANT",
        "content": "Found 2 articles ✓",
        "parts": [{"type": "text", "text": "Found"}],
        "toolInvocations": [
            {
                "id": "call-1",
                "name": "kb_search",
                "input": {"q": "printer jam", "k": 2},
                "output": [{"id": 7}, {"id": 9}],
                "status": "SUCCEEDED",
                "startedAt": "2026-11-25T09:00:00.250000+00:00",
                "durationMs": 41.5,
            },
            {"id": "call-2", "name": "ticket", "status": "FAILED", "error": "quota"},
        ],
        "trace": {"steps": ["search", "answer"]},
        "insights": {"intent": "hardware"},
        "metadata": {"model": "m-1"},
        "usage": {"inputTokens": 300, "outputTokens": 80, "cost": 0.002},
    }
    turn_id = agent.ok(APPEND, {"input": written})["appendTurn"]["id"]
    agent.ok(
        'mutation($t: ID!) { setVerification(turnId: $t, input: {grade: B, score: 0.75, notes: "ok"}) { id } }',
        {"t": turn_id},
    )
    alice.ok(
        'mutation($t: ID!) { addFeedback(turnId: $t, input: {kind: THUMBS_UP, comment: "nice"}) { id } }',
        {"t": turn_id},
    )
    turns = alice.ok(
        f"query($id: ID!) {{ session(id: $id) {{ usage {{ inputTokens outputTokens cost }} turns {{ nodes {{ {FULL_TURN} }} }} }} }}",
        {"id": sid},
    )["session"]
    read = turns["turns"]["nodes"][1]
    assert read["seq"] == 2 and read["role"] == "ASSISTANT" and read["authorId"] == "agent"
    for key in ("content", "parts", "trace", "insights", "metadata", "usage"):
        assert read[key] == written[key], key
    tools = read["toolInvocations"]
    assert tools[0] == {**written["toolInvocations"][0], "error": None}
    assert tools[1]["error"] == "quota" and tools[1]["status"] == "FAILED"
    assert read["verification"]["grade"] == "B" and read["verification"]["score"] == 0.75
    assert read["verification"]["verifiedBy"] == "agent"
    assert [(f["userId"], f["kind"], f["comment"]) for f in read["feedback"]] == [
        ("alice", "THUMBS_UP", "nice")
    ]
    assert turns["usage"] == {"inputTokens": 300, "outputTokens": 80, "cost": 0.002}


def test_service_appends_on_behalf_of_a_user(api) -> None:
    agent = api.as_("agent", "acme", Role.SERVICE)
    created = agent.ok(
        'mutation { createSession(input: {chatAppId: "support", onBehalfOf: "alice"}) { id ownerId } }'
    )["createSession"]
    assert created["ownerId"] == "alice"
    turn = agent.ok(
        APPEND,
        {
            "input": {
                "sessionId": created["id"],
                "role": "USER",
                "content": "hi",
                "onBehalfOf": "alice",
            }
        },
    )["appendTurn"]
    assert turn["authorId"] == "alice"
    listed = api.as_("alice", "acme").ok(LIST)["sessions"]["edges"]
    assert [e["node"]["id"] for e in listed] == [created["id"]]
    bob = api.as_("bob", "acme")
    assert (
        bob.error_code(
            'mutation { createSession(input: {chatAppId: "support", onBehalfOf: "alice"}) { id } }'
        )
        == "FORBIDDEN"
    )


def test_turns_page_backwards_from_the_newest(api) -> None:
    alice = api.as_("alice", "acme")
    sid = start(alice, text="m1")
    for i in range(2, 13):
        alice.ok(APPEND, {"input": {"sessionId": sid, "content": f"m{i}"}})
    query = """query($id: ID!, $before: String) { session(id: $id) {
        turns(last: 5, before: $before) { totalCount nodes { seq content }
          pageInfo { hasPreviousPage hasNextPage startCursor } } } }"""
    seen: list[int] = []
    before = None
    while True:
        page = alice.ok(query, {"id": sid, "before": before})["session"]["turns"]
        seen = [n["seq"] for n in page["nodes"]] + seen
        assert page["totalCount"] == 12
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert seen == list(range(1, 13))


def test_context_is_llm_ready(api) -> None:
    alice = api.as_("alice", "acme")
    sid = api.as_("alice", "acme").ok(
        'mutation { createSession(input: {chatAppId: "knowledge", agentContext: {systemPrompt: "Be kind"}}) { id } }'
    )["createSession"]["id"]
    alice.ok(SEND, {"input": {"sessionId": sid, "content": "Weather?"}})
    alice.ok(
        APPEND,
        {
            "input": {
                "sessionId": sid,
                "toolInvocations": [
                    {"id": "c1", "name": "weather", "input": {"city": "Oslo"}, "output": {"t": 3}}
                ],
            }
        },
    )
    ctx = alice.ok(
        """query($id: ID!) { session(id: $id) { context(maxTurns: 10) {
             systemPrompt truncated messages { role content toolCallId toolCalls { id name arguments } } } } }""",
        {"id": sid},
    )["session"]["context"]
    assert [m["role"] for m in ctx["messages"]] == ["system", "user", "assistant", "tool"]
    assert ctx["messages"][2]["toolCalls"] == [
        {"id": "c1", "name": "weather", "arguments": '{"city":"Oslo"}'}
    ]
    assert ctx["messages"][3]["toolCallId"] == "c1" and ctx["systemPrompt"] == "Be kind"


def test_context_request_is_what_each_api_takes(api) -> None:
    alice = api.as_("alice", "acme")
    sid = alice.ok(
        'mutation { createSession(input: {chatAppId: "knowledge", agentContext: {systemPrompt: "Be kind"}}) { id } }'
    )["createSession"]["id"]
    alice.ok(SEND, {"input": {"sessionId": sid, "content": "Weather?"}})
    running = {"id": "c2", "name": "radar", "input": "north", "status": "RUNNING"}
    done = {"id": "c1", "name": "weather", "input": {"city": "Oslo"}, "output": {"t": 3}}
    alice.ok(APPEND, {"input": {"sessionId": sid, "toolInvocations": [done, running]}})
    query = """query($id: ID!, $f: ContextFormat!) { session(id: $id) {
                 context(maxTurns: 10, format: $f) { leftOut request } } }"""
    openai = alice.ok(query, {"id": sid, "f": "OPENAI_CHAT"})["session"]["context"]
    assert openai["request"]["messages"] == [
        {"role": "system", "content": "Be kind"},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"t":3}'},
    ]
    anthropic = alice.ok(query, {"id": sid, "f": "ANTHROPIC_MESSAGES"})["session"]["context"]
    assert anthropic["request"] == {
        "system": "Be kind",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Oslo"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "c1", "content": '{"t":3}'}],
            },
        ],
    }
    assert openai["leftOut"] == anthropic["leftOut"] == 0  # the running call: not a message
    assert alice.error_code(query, {"id": sid, "f": "GEMINI"}) == "BAD_USER_INPUT"


def test_pagination_has_no_duplicates_or_gaps_while_sessions_arrive(api) -> None:
    alice = api.as_("alice", "acme")
    existing = [start(alice, text=f"s{i}") for i in range(9)]
    seen: list[str] = []
    after = None
    while True:
        page = alice.ok(LIST, {"first": 4, "after": after})["sessions"]
        seen += [e["node"]["id"] for e in page["edges"]]
        start(alice, text="arrived meanwhile")
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == existing[::-1]


def test_filters_and_archive(api) -> None:
    alice = api.as_("alice", "acme")
    support = start(alice, app="support")
    knowledge = alice.ok(
        'mutation { createSession(input: {chatAppId: "knowledge", tags: ["vip"]}) { id } }'
    )["createSession"]["id"]

    def ids(**filter_) -> list[str]:
        edges = alice.ok(LIST, {"filter": filter_})["sessions"]["edges"]
        return [e["node"]["id"] for e in edges]

    assert ids(chatAppIds=["support"]) == [support]
    assert ids(tag="VIP") == [] and ids(tag="vip") == [knowledge]
    alice.ok("mutation($id: ID!) { archiveSession(id: $id) { archived } }", {"id": support})
    assert ids() == [knowledge]
    assert ids(archived=True) == [support]
    assert set(ids(archived=None)) == {support, knowledge}
    alice.ok("mutation($id: ID!) { unarchiveSession(id: $id) { archived } }", {"id": support})
    assert set(ids()) == {support, knowledge}


def test_rename_pin_and_delete(api) -> None:
    alice = api.as_("alice", "acme")
    sid = start(alice)
    renamed = alice.ok(
        'mutation($id: ID!) { renameSession(id: $id, title: "Kept name") { title titleSource } }',
        {"id": sid},
    )["renameSession"]
    assert renamed == {"title": "Kept name", "titleSource": "MANUAL"}
    assert alice.ok("mutation($id: ID!) { pinSession(id: $id) { pinned } }", {"id": sid})[
        "pinSession"
    ]["pinned"]
    assert [s["id"] for s in alice.ok("{ pinnedSessions { id } }")["pinnedSessions"]] == [sid]
    # A single session's pin is looked up when asked for, wherever the session comes from.
    assert alice.ok("query($id: ID!) { session(id: $id) { pinned } }", {"id": sid})["session"] == {
        "pinned": True
    }
    sent = alice.ok(
        'mutation($id: ID!) { sendMessage(input: {sessionId: $id, content: "more"}) {'
        " session { pinned } } }",
        {"id": sid},
    )
    assert sent["sendMessage"]["session"] == {"pinned": True}
    listed = alice.ok("{ sessions(first: 5) { edges { node { id pinned } } } }")["sessions"]
    assert {"id": sid, "pinned": True} in [e["node"] for e in listed["edges"]]
    # Pins are per user: an admin of the entity sees the session unpinned.
    admin = api.as_("root", "acme", Role.ADMIN)
    assert admin.ok("query($id: ID!) { session(id: $id) { pinned } }", {"id": sid})["session"] == {
        "pinned": False
    }
    assert alice.ok("mutation($id: ID!) { deleteSession(id: $id) }", {"id": sid}) == {
        "deleteSession": True
    }
    assert alice.ok("query($id: ID!) { session(id: $id) { id } }", {"id": sid}) == {"session": None}
    assert alice.ok("{ pinnedSessions { id } }") == {"pinnedSessions": []}
    assert (
        alice.error_code("mutation($id: ID!) { deleteSession(id: $id) }", {"id": sid})
        == "NOT_FOUND"
    )


def test_pinning_refused_when_the_chat_app_disallows_it(settings_factory, tmp_path) -> None:
    apps = tmp_path / "apps.toml"
    apps.write_text(
        '[[chat_apps]]\nid = "kiosk"\nname = "Kiosk"\n[chat_apps.settings]\nallow_pinning = false\n'
    )
    settings = settings_factory(chat_apps_file=apps)
    with TestClient(create_app(settings)) as client:
        token = TokenIssuer(token_config(settings)).issue("alice", "acme")
        headers = {"Authorization": f"Bearer {token}"}
        sid = client.post(
            "/graphql",
            json={"query": 'mutation { createSession(input: {chatAppId: "kiosk"}) { id } }'},
            headers=headers,
        ).json()["data"]["createSession"]["id"]
        body = client.post(
            "/graphql",
            json={
                "query": "mutation($id: ID!) { pinSession(id: $id) { pinned } }",
                "variables": {"id": sid},
            },
            headers=headers,
        ).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert "pinning" in body["errors"][0]["message"]


@pytest.fixture
def clocked(settings: Settings) -> Iterator[tuple[Callable[..., dict], SettableClock]]:
    clock = SettableClock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    issuer = TokenIssuer(token_config(settings))
    with TestClient(create_app(settings, clock=clock)) as client:

        def call(query: str, variables: dict | None = None, tz: str | None = None) -> dict:
            token = issuer.issue("alice", "acme", time_zone=tz)
            body = client.post(
                "/graphql",
                json={"query": query, "variables": variables or {}},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            assert "errors" not in body, body
            return body["data"]

        yield call, clock


def test_date_groups_in_the_callers_time_zone(clocked) -> None:
    call, clock = clocked
    now = clock.current  # Wednesday 2026-11-25 12:00 UTC
    moments = {
        "late last night UTC": datetime(2026, 11, 24, 23, 30, tzinfo=UTC),
        "monday": datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
        "last week": datetime(2026, 11, 18, 8, 0, tzinfo=UTC),
        "this month": datetime(2026, 11, 3, 8, 0, tzinfo=UTC),
        "long ago": datetime(2025, 1, 1, tzinfo=UTC),
    }
    named = {}
    for text, moment in moments.items():
        clock.current = moment
        # knowledge keeps sessions 730 days, so "long ago" has not expired by `now`.
        sent = call(SEND, {"input": {"chatAppId": "knowledge", "content": text}})
        # Keyed by id: background titling may rename the sessions meanwhile.
        named[sent["sendMessage"]["session"]["id"]] = text

    def groups(**kwargs) -> dict[str, str]:
        edges = call(LIST, **kwargs)["sessions"]["edges"]
        return {named[e["node"]["id"]]: e["dateGroup"] for e in edges}

    clock.current = now
    assert groups() == {
        "late last night UTC": "YESTERDAY",
        "monday": "THIS_WEEK",
        "last week": "LAST_WEEK",
        "this month": "THIS_MONTH",
        "long ago": "OLDER",
    }
    tokyo = groups(variables={"tz": "Asia/Tokyo"})
    assert tokyo["late last night UTC"] == "TODAY"
    assert groups(tz="Asia/Tokyo") == tokyo


def test_most_recent_activity_first(clocked) -> None:
    call, clock = clocked
    start_time = clock.current
    ids = []
    for i in range(3):
        clock.current = start_time + timedelta(minutes=i)
        ids.append(
            call(SEND, {"input": {"chatAppId": "support", "content": f"s{i}"}})["sendMessage"][
                "session"
            ]["id"]
        )
    clock.current = start_time + timedelta(minutes=10)
    call(SEND, {"input": {"sessionId": ids[0], "content": "back to the first"}})
    order = [e["node"]["id"] for e in call(LIST)["sessions"]["edges"]]
    assert order == [ids[0], ids[2], ids[1]]


TEMPLATES = """query($app: ID!) { templates(chatAppId: $app) {
  id chatAppId name description systemPrompt variables starterTurns { role content } } }"""


def test_templates_are_listed_per_chat_app(api) -> None:
    agent = api.as_("agent", "acme", Role.SERVICE)
    (brief,) = agent.ok(TEMPLATES, {"app": "knowledge"})["templates"]
    assert brief["id"] == "research-brief" and brief["chatAppId"] == "knowledge"
    assert brief["systemPrompt"].startswith("You are a careful research assistant")
    assert brief["variables"] == {"output_format": "brief", "max_sources": 5}
    assert [t["role"] for t in brief["starterTurns"]] == ["SYSTEM", "ASSISTANT"]
    support = api.as_("bob", "globex").ok(TEMPLATES, {"app": "support"})["templates"]
    assert [t["id"] for t in support] == ["order-issue"]
    assert agent.error_code(TEMPLATES, {"app": "kiosk"}) == "NOT_FOUND"


def test_create_session_from_a_template(api) -> None:
    alice = api.as_("alice", "acme")
    created = alice.ok(
        """mutation { createSession(input: {chatAppId: "knowledge", templateId: "research-brief",
             agentContext: {variables: {max_sources: 9}, memory: ["x"]}}) {
           id templateId turnCount agentContext
           turns { nodes { seq role authorId content } } } }"""
    )["createSession"]
    assert created["templateId"] == "research-brief" and created["turnCount"] == 2
    context = created["agentContext"]
    assert context["systemPrompt"].startswith("You are a careful research assistant")
    assert context["variables"] == {"output_format": "brief", "max_sources": 9}
    assert context["memory"] == ["x"]
    assert [(t["seq"], t["role"], t["authorId"]) for t in created["turns"]["nodes"]] == [
        (1, "SYSTEM", "alice"),
        (2, "ASSISTANT", "template"),
    ]
    assert created["turns"]["nodes"][1]["content"].startswith("Which topic")
    ctx = alice.ok(
        "query($id: ID!) { session(id: $id) { context { systemPrompt messages { role } } } }",
        {"id": created["id"]},
    )["session"]["context"]
    assert ctx["systemPrompt"].startswith("You are a careful research assistant")
    assert [m["role"] for m in ctx["messages"]] == ["system", "system", "assistant"]
    alice.ok(SEND, {"input": {"sessionId": created["id"], "content": "Solar panels"}})
    turn = alice.ok("query($id: ID!) { session(id: $id) { turnCount } }", {"id": created["id"]})[
        "session"
    ]
    assert turn["turnCount"] == 3


def test_an_input_system_prompt_wins_over_the_template(api) -> None:
    alice = api.as_("alice", "acme")
    created = alice.ok(
        """mutation { createSession(input: {chatAppId: "support", templateId: "order-issue",
             agentContext: {systemPrompt: "Mine."}}) { agentContext turnCount } }"""
    )["createSession"]
    assert created["agentContext"]["systemPrompt"] == "Mine."
    assert created["agentContext"]["variables"]["escalation_queue"] == "orders"
    assert created["turnCount"] == 1


def test_unknown_template_or_chat_app_is_not_found(api) -> None:
    alice = api.as_("alice", "acme")
    body = alice.post(
        'mutation { createSession(input: {chatAppId: "support", templateId: "research-brief"}) { id } }'
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "research-brief" in body["errors"][0]["message"]
    assert (
        alice.error_code(
            'mutation { createSession(input: {chatAppId: "kiosk", templateId: "x"}) { id } }'
        )
        == "NOT_FOUND"
    )
    assert alice.ok(LIST)["sessions"]["edges"] == []
