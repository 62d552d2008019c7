"""The app run in process with live updates, for the tests of the realtime hub and of the
WebSocket transport: a WebSocket client (`Live`, `Socket`), the fixtures that make one
(`live`, `live_factory`, `chat_apps_file`), and GraphQL documents."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketTestSession

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Role, UserType
from sessionhub.server.app import create_app
from sessionhub.server.settings import Settings, token_config

SEND = """mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) { session { id } turn { id seq } } }"""

EVENTS = """subscription Events($id: ID!, $after: Int) {
  sessionEvents(sessionId: $id, afterSeq: $after) {
    __typename
    ... on TurnAdded { sessionId seq turn { id seq role content } }
    ... on TurnUpdated { seq turn { feedback { kind } verification { grade } } }
    ... on SessionUpdated { session { id title archived turnCount } }
    ... on AccessRevoked { sessionId reason }
    ... on SessionDeleted { sessionId }
  }
}"""

SIDEBAR = """subscription { mySessions { change sessionId session { id title ownerId } } }"""

# Automatic titles off: a title arriving between two turns would make streams
# nondeterministic. Sharing on, outside the entity too.
CHAT_APPS = """
[[chat_apps]]
id = "team"
name = "Team"
[chat_apps.settings]
auto_generate_titles = false
allow_sharing = true
allow_external_sharing = true
allow_pinning = true
max_session_history = 5000
retention_days = 30
"""


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


class Socket:
    """One GraphQL WebSocket connection to the app run in process."""

    def __init__(self, session: WebSocketTestSession, protocol: str) -> None:
        self.session = session
        self.legacy = protocol == "graphql-ws"

    def init(self, token: str | None, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        elif token is not None:
            message["payload"] = {"Authorization": f"Bearer {token}"}
        self.session.send_json(message)
        answer = self.receive()
        return answer

    def receive(self) -> dict[str, Any]:
        while True:
            message = self.session.receive_json()
            if message.get("type") != "ka":
                return message

    def subscribe(self, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        self.session.send_json(
            {
                "id": op_id,
                "type": "start" if self.legacy else "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )

    def complete(self, op_id: str) -> None:
        self.session.send_json({"id": op_id, "type": "stop" if self.legacy else "complete"})

    def payload(self, op_id: str) -> dict[str, Any]:
        """The next data message, which must be for `op_id`."""
        message = self.receive()
        assert message.get("id") == op_id, message
        assert message["type"] == ("data" if self.legacy else "next"), message
        return message["payload"]

    def event(self, op_id: str) -> dict[str, Any]:
        payload = self.payload(op_id)
        assert "errors" not in payload, payload
        return next(iter(payload["data"].values()))


class Live:
    """The app in process, an HTTP GraphQL caller, and WebSocket connections to it."""

    def __init__(self, client: TestClient, issuer: TokenIssuer) -> None:
        self.client = client
        self.issuer = issuer

    @property
    def components(self) -> Any:
        return self.client.app.state.components  # type: ignore[attr-defined]

    def token(
        self,
        user: str,
        entity: str = "acme",
        *roles: Role,
        user_type: UserType = UserType.INTERNAL,
        ttl: int = 3600,
    ) -> str:
        return self.issuer.issue(
            user, entity, roles or (Role.USER,), user_type=user_type, ttl_seconds=ttl
        )

    def post(self, token: str, query: str, variables: dict[str, Any] | None = None) -> dict:
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )
        return response.json()

    def ok(self, token: str, query: str, variables: dict[str, Any] | None = None) -> dict:
        body = self.post(token, query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def new_session(self, token: str, content: str = "hello", app: str = "team") -> str:
        data = self.ok(token, SEND, {"input": {"chatAppId": app, "content": content}})
        return data["sendMessage"]["session"]["id"]

    def send(self, token: str, session_id: str, content: str) -> int:
        data = self.ok(token, SEND, {"input": {"sessionId": session_id, "content": content}})
        return data["sendMessage"]["turn"]["seq"]

    def connect(self, protocol: str = "graphql-transport-ws") -> Any:
        return _Connect(self.client, protocol)

    def stats(self) -> dict[str, int | float]:
        return self.components.services.realtime.stats()


class _Connect:
    def __init__(self, client: TestClient, protocol: str) -> None:
        self._manager = client.websocket_connect("/graphql", subprotocols=[protocol])
        self._protocol = protocol

    def __enter__(self) -> Socket:
        return Socket(self._manager.__enter__(), self._protocol)

    def __exit__(self, *exc: Any) -> None:
        self._manager.__exit__(*exc)


@pytest.fixture
def chat_apps_file(tmp_path: Path) -> Path:
    path = tmp_path / "chat_apps.toml"
    path.write_text(CHAT_APPS)
    return path


@pytest.fixture
def live_factory(
    settings_factory: Callable[..., Settings], chat_apps_file: Path
) -> Iterator[Callable[..., Live]]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Live:
        settings = settings_factory(**{"chat_apps_file": chat_apps_file, **overrides})
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return Live(client, TokenIssuer(token_config(settings)))

    try:
        yield make
    finally:
        for client in clients:
            client.__exit__(None, None, None)


@pytest.fixture
def live(live_factory: Callable[..., Live]) -> Live:
    return live_factory()
