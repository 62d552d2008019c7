"""The WebSocket writers against a real server and real sockets: a client that stops
reading holds back only its own messages; everyone else in its group keeps getting every
turn at once, and nothing is left behind when it goes."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from tests.support.live import CHAT_APPS
from tests.support.servers import Server, environment, start_server

EVENTS = """subscription($id: ID!) { sessionEvents(sessionId: $id) {
  __typename ... on TurnAdded { seq turn { content } } } }"""
SEND = """mutation($input: SendMessageInput!) { sendMessage(input: $input) {
  session { id } turn { seq } } }"""


def _send(server: Server, token: str, session_id: str | None, content: str) -> tuple[str, int]:
    target = {"sessionId": session_id} if session_id else {"chatAppId": "team"}
    response = httpx.post(
        f"{server.base_url}/graphql",
        json={"query": SEND, "variables": {"input": {**target, "content": content}}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    data = response.json()["data"]["sendMessage"]
    return data["session"]["id"], data["turn"]["seq"]


def _metrics(server: Server) -> dict[str, float]:
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    return {
        name: float(value)
        for name, value in re.findall(r"^sessionhub_realtime_(\w+) (\S+)$", text, re.M)
    }


async def _open(server: Server, token: str, **options: Any) -> ClientConnection:
    url = server.base_url.replace("http://", "ws://") + "/graphql"
    ws = await connect(url, subprotocols=["graphql-transport-ws"], **options)  # type: ignore[list-item]
    await ws.send(orjson.dumps({"type": "connection_init", "payload": {"token": token}}).decode())
    assert orjson.loads(await ws.recv()) == {"type": "connection_ack"}
    return ws


async def _subscribe(ws: ClientConnection, session_id: str) -> None:
    message = {
        "id": "s",
        "type": "subscribe",
        "payload": {"query": EVENTS, "variables": {"id": session_id}},
    }
    await ws.send(orjson.dumps(message).decode())


async def _next_seq(ws: ClientConnection) -> int:
    message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["type"] == "next", message
    return message["payload"]["data"]["sessionEvents"]["seq"]


async def test_a_client_that_stops_reading_holds_back_no_one_else(tmp_path: Path) -> None:
    (tmp_path / "chat_apps.toml").write_text(CHAT_APPS)
    env = environment(
        tmp_path,
        SESSIONHUB_CHAT_APPS_FILE=str(tmp_path / "chat_apps.toml"),
        SESSIONHUB_MAX_CONTENT_CHARS="1000000",
    )
    server = start_server(tmp_path, env)
    try:
        token = server.token("alice")
        session_id, _ = _send(server, token, None, "turn 1")
        # A small receive buffer, a queue of one message and no compression: the server
        # feels the stall soon. It subscribes first, so the writers meet it first.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])))
        stalled = await _open(server, token, sock=sock, max_queue=1, compression=None)
        await _subscribe(stalled, session_id)
        reader = await _open(server, token, compression=None)
        await _subscribe(reader, session_id)
        deadline = time.monotonic() + 10
        while _metrics(server).get("members") != 2:
            assert time.monotonic() < deadline, "the subscriptions did not start"
            await asyncio.sleep(0.02)

        big = "x" * 400_000
        waiting = 0.0
        for turn in range(2, 80):
            started = time.monotonic()
            _, seq = _send(server, token, session_id, f"{turn} {big}")
            assert await _next_seq(reader) == seq
            assert time.monotonic() - started < 5, "the reader waited for the stalled client"
            waiting = _metrics(server)["ws_queued_messages"]
            if waiting >= 3:
                break
        assert waiting >= 3, "the stalled client never held messages back"
        # Stalled for good: every later turn still reaches the reader at once.
        for turn in range(3):
            started = time.monotonic()
            _, seq = _send(server, token, session_id, f"more {turn}")
            assert await _next_seq(reader) == seq
            assert time.monotonic() - started < 5
        assert _metrics(server)["ws_queued_messages"] >= waiting

        await stalled.close()
        await reader.close()
        deadline = time.monotonic() + 15
        while True:
            left = _metrics(server)
            if (left["ws_connections"], left["ws_tasks"], left["ws_queued_messages"]) == (0, 0, 0):
                break
            assert time.monotonic() < deadline, left
            await asyncio.sleep(0.05)
    finally:
        server.stop()
