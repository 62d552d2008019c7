"""The optional LLM title generator against a real HTTP server on 127.0.0.1 that speaks
the OpenAI chat-completions API (no mock objects): answers, slowness, errors, garbage."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient

from sessionhub.adapters.offload import ProcessOffload, ThreadOffload
from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import TurnRole
from sessionhub.domain.titles import KeyphraseTitleGenerator, TurnText
from sessionhub.server.app import build_title_generator, build_title_offload, create_app
from sessionhub.server.errors import SettingsError
from sessionhub.server.settings import Settings, token_config
from sessionhub.server.title_llm import ChatCompletionsTitleGenerator, completions_url
from tests.conftest import Api
from tests.support.titles import keyphrase_titler, keyphrase_titles

TURNS = [
    TurnText(TurnRole.USER, "My sourdough starter smells like nail polish remover. Is it dead?"),
    TurnText(
        TurnRole.ASSISTANT, "No: the starter is hungry. Feed it twice a day and keep it warm."
    ),
]
OFFLINE = keyphrase_titler().title(TURNS)


def completion(content: Any) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "tiny-titles",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    hold: bool = False  # answer only once the test releases it


@dataclass
class ChatServer:
    """Routes by the first path segment: /<behaviour>/v1/chat/completions."""

    base: str = ""
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[tuple[str, dict, dict]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, behaviour: str) -> str:
        return f"{self.base}/{behaviour}/v1"


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server_state = ChatServer()
    answers = {
        "ok": Reply(body=json.dumps(completion('"Reviving a sourdough starter."')).encode()),
        "long": Reply(
            body=json.dumps(
                completion(
                    "Title: Reviving a sourdough starter that smells of acetone after a week "
                    "in the fridge"
                )
            ).encode()
        ),
        "rambling": Reply(body=json.dumps(completion("This conversation is about " * 40)).encode()),
        "empty": Reply(body=json.dumps(completion("  ")).encode()),
        "null": Reply(body=json.dumps(completion(None)).encode()),
        "no-choices": Reply(body=b'{"choices": []}'),
        "garbage": Reply(body=b"<html>upstream says hello</html>", content_type="text/html"),
        "error": Reply(status=500, body=b'{"error": {"message": "overloaded"}}'),
        "unauthorized": Reply(status=401, body=b'{"error": {"message": "bad key"}}'),
        "slow": Reply(body=json.dumps(completion("Too late")).encode(), hold=True),
    }
    server_state.replies.update(answers)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length) or b"{}")
            behaviour = self.path.strip("/").split("/")[0]
            server_state.requests.append((self.path, dict(self.headers), payload))
            reply = server_state.replies.get(behaviour, Reply(status=404, body=b"{}"))
            if reply.hold:
                server_state.release.wait(timeout=30)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, as it should

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server_state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def generator(server: ChatServer, behaviour: str, timeout: float = 5.0, key: str | None = None):
    return ChatCompletionsTitleGenerator(
        server.url(behaviour), "tiny-titles", key, timeout, fallback=keyphrase_titles()
    )


async def test_the_models_answer_becomes_the_title(chat_server: ChatServer) -> None:
    llm = generator(chat_server, "ok", key="sk-test-key")
    try:
        assert await llm.generate(TURNS) == "Reviving a sourdough starter"
    finally:
        await llm.aclose()
    ((path, headers, payload),) = chat_server.requests
    assert path == "/ok/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test-key"
    assert payload["model"] == "tiny-titles"
    assert [m["role"] for m in payload["messages"]] == ["system", "user"]
    assert "nail polish remover" in payload["messages"][1]["content"]


async def test_a_long_answer_is_cut_to_a_title(chat_server: ChatServer) -> None:
    llm = generator(chat_server, "long")
    try:
        title = await llm.generate(TURNS)
    finally:
        await llm.aclose()
    assert title is not None and len(title) <= 60
    assert title.startswith("Reviving a sourdough starter") and not title.startswith("Title")


@pytest.mark.parametrize(
    "behaviour", ["error", "unauthorized", "garbage", "no-choices", "empty", "null", "rambling"]
)
async def test_a_failed_or_unusable_answer_falls_back_to_the_offline_title(
    chat_server: ChatServer, behaviour: str
) -> None:
    llm = generator(chat_server, behaviour)
    try:
        assert await llm.generate(TURNS) == OFFLINE
    finally:
        await llm.aclose()
    assert len(chat_server.requests) == 1  # it did ask


async def test_a_slow_model_times_out_to_the_offline_title(chat_server: ChatServer) -> None:
    llm = generator(chat_server, "slow", timeout=0.2)
    try:
        assert await llm.generate(TURNS) == OFFLINE
    finally:
        await llm.aclose()
        chat_server.release.set()


async def test_an_unreachable_endpoint_falls_back(chat_server: ChatServer) -> None:
    # A port nothing listens on: take one from a closed socket.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = ChatCompletionsTitleGenerator(
        f"http://127.0.0.1:{port}/v1", "m", None, 2.0, fallback=keyphrase_titles()
    )
    try:
        assert await llm.generate(TURNS) == OFFLINE
    finally:
        await llm.aclose()


def test_completions_url() -> None:
    assert completions_url("http://h/v1") == "http://h/v1/chat/completions"
    assert completions_url("http://h/v1/") == "http://h/v1/chat/completions"
    assert completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


def test_settings_choose_the_generator(settings_factory: Callable[..., Settings]) -> None:
    offload = ThreadOffload()
    assert isinstance(build_title_generator(settings_factory(), offload), KeyphraseTitleGenerator)
    chosen = build_title_generator(
        settings_factory(
            title_llm_url="http://127.0.0.1:9/v1",
            title_llm_model="tiny-titles",
            title_llm_api_key="sk-secret",
        ),
        offload,
    )
    assert isinstance(chosen, ChatCompletionsTitleGenerator)


def test_settings_choose_where_title_work_runs(settings_factory: Callable[..., Settings]) -> None:
    in_process = settings_factory(title_worker_process=True)
    assert isinstance(build_title_offload(in_process), ProcessOffload)
    in_thread = settings_factory(title_worker_process=False)
    assert isinstance(build_title_offload(in_thread), ThreadOffload)


def test_the_server_titles_sessions_with_the_model(
    chat_server: ChatServer, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(
        title_llm_url=chat_server.url("ok"),
        title_llm_model="tiny-titles",
        title_llm_timeout_seconds=5,
    )
    with TestClient(create_app(settings)) as client:
        gql = Api(client, TokenIssuer(token_config(settings))).as_("alice", "acme").ok

        sid = gql(
            "mutation($i: SendMessageInput!) { sendMessage(input: $i) { session { id } } }",
            {"i": {"chatAppId": "support", "content": TURNS[0].content}},
        )["sendMessage"]["session"]["id"]
        gql(
            "mutation($i: AppendTurnInput!) { appendTurn(input: $i) { id } }",
            {"i": {"sessionId": sid, "content": TURNS[1].content}},
        )
        client.portal.call(client.app.state.components.titles.drain)
        session = gql("query($id: ID!) { session(id: $id) { title titleSource } }", {"id": sid})
    assert session["session"] == {"title": "Reviving a sourdough starter", "titleSource": "AUTO"}


def test_llm_settings_are_checked_at_start(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(SettingsError, match=r"SESSIONHUB_TITLE_LLM_MODEL: .*must be set"):
        settings_factory(title_llm_url="http://127.0.0.1:9/v1")
    with pytest.raises(SettingsError, match=r"SESSIONHUB_TITLE_LLM_URL: .*http"):
        settings_factory(title_llm_url="ftp://models.internal/v1", title_llm_model="m")
    settings = settings_factory(
        title_llm_url="http://127.0.0.1:9/v1", title_llm_model="m", title_llm_api_key="sk-secret"
    )
    assert "sk-secret" not in repr(settings)
