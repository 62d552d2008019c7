"""End to end: real `sessionhub serve` processes under uvicorn, driven over real HTTP.

Nothing is mocked. Each server listens on 127.0.0.1 on a free port, with its own store
(a SQLite file, or a database on the mongoeco wire server: every test runs on both) and
its own JWT secret in a temporary folder, and is always terminated by a fixture
finalizer. Tokens come from the real `sessionhub token` command run with the same
environment, which proves that what the CLI signs the server accepts.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.support.servers import (
    CLI,
    CLI_TIMEOUT_S,
    EXIT_TIMEOUT_S,
    GRAPHQL_RESPONSE,
    Client,
    Server,
    environment,
    running_server,
    start_server,
)


@pytest.fixture(scope="module", params=["sqlite", "mongo"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("e2e-server")
    env = environment(folder)
    with ExitStack() as stack:
        if request.param == "mongo":
            mongoeco = request.getfixturevalue("mongoeco")
            env["SESSIONHUB_DATABASE_URL"] = stack.enter_context(mongoeco.database("e2e"))
        yield stack.enter_context(running_server(folder, env))


@pytest.fixture(scope="module")
def alice(server: Server) -> Client:
    return Client(server, server.token("alice", "acme"))


# GraphQL documents

SEND = """
mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) {
    createdSession
    session { id title turnCount }
    turn { id seq role content }
  }
}"""

APPEND = """
mutation Append($input: AppendTurnInput!) {
  appendTurn(input: $input) {
    id seq role content
    toolInvocations { id name input output status }
  }
}"""

TURNS = """
query Turns($id: ID!, $last: Int) {
  session(id: $id) {
    id
    turns(last: $last) {
      totalCount
      edges { node { id seq role content toolInvocations { name input output status } } }
    }
  }
}"""

SESSIONS = """
query Sessions($filter: SessionFilter) {
  sessions(filter: $filter) { edges { node { id title pinned archived turnCount } } }
}"""

SESSION_SNAPSHOT = """
query Snapshot($id: ID!) {
  session(id: $id) {
    id chatAppId ownerId title titleSource createdAt updatedAt lastActivityAt turnCount
    archived pinned tags participants status
    turns(first: 100) {
      totalCount
      edges {
        cursor
        node {
          id sessionId seq role authorId content parts createdAt metadata
          toolInvocations { id name input output status error durationMs }
          usage { inputTokens outputTokens cost }
        }
      }
    }
  }
}"""


def _new_session(client: Client, content: str, chat_app: str = "support") -> dict[str, Any]:
    data = client.ok(SEND, {"input": {"content": content, "chatAppId": chat_app}})
    return data["sendMessage"]


# Health


def test_healthz_answers_ok(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/healthz", timeout=5.0)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == "ok"


def test_cli_token_is_accepted_by_the_server(alice: Client) -> None:
    me = alice.ok("{ me { userId entityId userType roles } }")["me"]
    assert me == {"userId": "alice", "entityId": "acme", "userType": "INTERNAL", "roles": ["USER"]}


# The lifecycle


def test_session_lifecycle_over_http(alice: Client) -> None:
    sent = _new_session(alice, "How do I rotate the API keys of our staging project?")
    assert sent["createdSession"] is True
    session_id = sent["session"]["id"]
    assert sent["turn"]["seq"] == 1
    assert sent["turn"]["role"] == "USER"

    tool_input = {"query": "rotate api keys", "scope": ["staging"], "limit": 3}
    tool_output = {"hits": [{"doc": "keys.md", "score": 0.93}], "took_ms": 12}
    appended = alice.ok(
        APPEND,
        {
            "input": {
                "sessionId": session_id,
                "role": "ASSISTANT",
                "content": "Open Settings > API keys, then choose Rotate for the staging key.",
                "toolInvocations": [
                    {"name": "search_docs", "input": tool_input, "output": tool_output}
                ],
            }
        },
    )["appendTurn"]
    assert appended["seq"] == 2
    assert appended["toolInvocations"][0]["name"] == "search_docs"
    assert appended["toolInvocations"][0]["input"] == tool_input
    assert appended["toolInvocations"][0]["output"] == tool_output

    listed = alice.ok(SESSIONS)["sessions"]["edges"]
    assert listed[0]["node"]["id"] == session_id
    assert listed[0]["node"]["turnCount"] == 2

    turns = alice.ok(TURNS, {"id": session_id, "last": 50})["session"]["turns"]
    assert turns["totalCount"] == 2
    nodes = [edge["node"] for edge in turns["edges"]]
    assert [n["seq"] for n in nodes] == [1, 2]
    assert [n["role"] for n in nodes] == ["USER", "ASSISTANT"]
    assert nodes[0]["content"] == "How do I rotate the API keys of our staging project?"
    assert nodes[1]["toolInvocations"] == [
        {"name": "search_docs", "input": tool_input, "output": tool_output, "status": "SUCCEEDED"}
    ]

    renamed = alice.ok(
        'mutation($id: ID!) { renameSession(id: $id, title: "Staging key rotation") '
        "{ id title titleSource } }",
        {"id": session_id},
    )["renameSession"]
    assert renamed == {"id": session_id, "title": "Staging key rotation", "titleSource": "MANUAL"}

    pinned = alice.ok(
        "mutation($id: ID!) { pinSession(id: $id) { id pinned } }", {"id": session_id}
    )["pinSession"]
    assert pinned == {"id": session_id, "pinned": True}
    pinned_list = alice.ok("{ pinnedSessions { id title pinned } }")["pinnedSessions"]
    assert {"id": session_id, "title": "Staging key rotation", "pinned": True} in pinned_list

    archived = alice.ok(
        "mutation($id: ID!) { archiveSession(id: $id) { id archived } }", {"id": session_id}
    )["archiveSession"]
    assert archived == {"id": session_id, "archived": True}
    active_ids = [e["node"]["id"] for e in alice.ok(SESSIONS)["sessions"]["edges"]]
    assert session_id not in active_ids
    archived_ids = [
        e["node"]["id"]
        for e in alice.ok(SESSIONS, {"filter": {"archived": True}})["sessions"]["edges"]
    ]
    assert session_id in archived_ids

    deleted = alice.ok("mutation($id: ID!) { deleteSession(id: $id) }", {"id": session_id})
    assert deleted == {"deleteSession": True}
    assert alice.ok("query($id: ID!) { session(id: $id) { id } }", {"id": session_id}) == {
        "session": None
    }
    still_pinned = alice.ok("{ pinnedSessions { id } }")["pinnedSessions"]
    assert session_id not in [p["id"] for p in still_pinned]


# Concurrency


async def test_concurrent_appends_get_gapless_sequence_numbers(server: Server) -> None:
    client = Client(server, server.token("carol", "acme"))
    session_id = _new_session(client, "Start of a busy session")["session"]["id"]
    count = 40

    async with httpx.AsyncClient(
        base_url=server.base_url, headers=client.headers, timeout=30.0
    ) as http:

        async def append(i: int) -> int:
            response = await http.post(
                "/graphql",
                json={
                    "query": APPEND,
                    "variables": {
                        "input": {"sessionId": session_id, "content": f"concurrent answer {i}"}
                    },
                },
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert "errors" not in body, body["errors"]
            return body["data"]["appendTurn"]["seq"]

        seqs = await asyncio.gather(*(append(i) for i in range(count)))

    assert sorted(seqs) == list(range(2, count + 2))
    turns = client.ok(TURNS, {"id": session_id, "last": 50})["session"]["turns"]
    assert turns["totalCount"] == count + 1
    stored = [edge["node"] for edge in turns["edges"]]
    assert [t["seq"] for t in stored] == list(range(1, count + 2))
    contents = {t["content"] for t in stored[1:]}
    assert contents == {f"concurrent answer {i}" for i in range(count)}


# Persistence across processes


def test_sessions_survive_a_restart_on_the_same_database(tmp_path: Path) -> None:
    env = environment(tmp_path)
    first = start_server(tmp_path, env, "first")
    try:
        token = first.token("dave", "acme")
        client = Client(first, token)
        session_id = _new_session(client, "Plan the quarterly data migration", "knowledge")[
            "session"
        ]["id"]
        for i in range(3):
            client.ok(
                APPEND,
                {
                    "input": {
                        "sessionId": session_id,
                        "content": f"Step {i}: copy the partitions, then verify the checksums.",
                        "toolInvocations": [
                            {"name": "run_sql", "input": {"sql": f"SELECT {i}"}, "output": [i]}
                        ],
                        "usage": {"inputTokens": 10 + i, "outputTokens": 100 + i, "cost": 0.5},
                    }
                },
            )
        client.ok(
            'mutation($id: ID!) { renameSession(id: $id, title: "Migration plan") { id } }',
            {"id": session_id},
        )
        before = client.ok(SESSION_SNAPSHOT, {"id": session_id})["session"]
    finally:
        first.stop()
    assert first.process.returncode is not None

    second = start_server(tmp_path, env, "second")
    try:
        after = Client(second, token).ok(SESSION_SNAPSHOT, {"id": session_id})["session"]
    finally:
        second.stop()

    assert before is not None
    assert before["turnCount"] == 4
    assert [e["node"]["seq"] for e in before["turns"]["edges"]] == [1, 2, 3, 4]
    assert after == before


# GraphQL over HTTP: the Accept header


def test_graphql_response_json_when_asked(alice: Client) -> None:
    response = alice.post("{ me { userId } }", accept=GRAPHQL_RESPONSE)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == GRAPHQL_RESPONSE
    assert response.json() == {"data": {"me": {"userId": "alice"}}}


def test_validation_error_is_400_with_graphql_response_json(alice: Client) -> None:
    response = alice.post("{ noSuchField }", accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    assert response.headers["content-type"].split(";")[0] == GRAPHQL_RESPONSE
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_plain_json_when_asked(alice: Client) -> None:
    response = alice.post("{ me { userId } }", accept="application/json")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    assert response.json() == {"data": {"me": {"userId": "alice"}}}


def test_graphql_response_json_distinguishes_request_errors_from_field_errors(
    alice: Client,
) -> None:
    """A request error (validation) has no `data` entry and is a 400; a field error on a
    non-null root field ran execution, so `data` is null and the status is 200."""
    invalid = alice.post("{ noSuchField }", accept=GRAPHQL_RESPONSE)
    assert invalid.status_code == 400
    assert "data" not in invalid.json()

    failed_field = alice.post(
        'mutation { renameSession(id: "no-such-session", title: "x") { id } }',
        accept=GRAPHQL_RESPONSE,
    )
    body = failed_field.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert failed_field.status_code == 200


# GraphiQL, offline


class _AssetLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        if tag == "script" and "src" in values:
            self.scripts.append(values["src"])
        if tag == "link" and "href" in values:
            self.links.append(values["href"])
        self.urls.extend(values[name] for name in ("src", "href") if name in values)


def test_graphiql_is_served_with_local_assets_only(server: Server) -> None:
    page = httpx.get(f"{server.base_url}/graphql", headers={"Accept": "text/html"}, timeout=10.0)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")

    parser = _AssetLinks()
    parser.feed(page.text)
    assert parser.scripts, "the page loads no script"
    assert parser.links, "the page links no stylesheet"
    remote = [u for u in parser.urls if u.strip().lower().startswith(("http://", "https://", "//"))]
    assert remote == []

    for path in parser.scripts + parser.links:
        assert path.startswith("/") and not path.startswith("//"), path
        asset = httpx.get(f"{server.base_url}{path}", timeout=10.0)
        assert asset.status_code == 200, path
        assert asset.content, path


# Bad settings stop the server


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSIONHUB_PORT", "notanumber"),
        ("SESSIONHUB_DATABASE_URL", "postgres://x"),
        ("SESSIONHUB_JWT_SECRET", "short"),
    ],
)
def test_bad_setting_stops_the_server(tmp_path: Path, variable: str, value: str) -> None:
    env = environment(tmp_path, **{variable: value})
    process = subprocess.Popen(
        [*CLI, "serve"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _, stderr = process.communicate(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate(timeout=10)
        pytest.fail(f"sessionhub serve kept running with {variable}={value!r}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode != 0
    assert variable in stderr.decode(errors="replace")


def test_token_with_unknown_role_fails_naming_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "token", "--user", "alice", "--entity", "acme", "--roles", "wizard"],
        env=environment(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert done.returncode != 0
    assert "wizard" in done.stderr
    assert done.stdout.strip() == ""
