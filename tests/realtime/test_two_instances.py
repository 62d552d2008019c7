"""End to end: two `sessionhub serve` processes under uvicorn on one store (a SQLite file,
or a MongoDB database on the mongoeco wire server), joined by a real redis-server that the
test starts, stops mid-stream and restarts. Clients are the `websockets` package and
plain HTTP. Nothing is mocked.

- A turn sent through instance A reaches a subscriber on instance B, on either store;
  appends sent to both at once leave the session's seq without gaps or repeats.
- While Redis is down, queries and mutations keep working; once it is back the
  subscriber on B has every turn, in order, once.
- Hundreds of clients that vanish without a word leave no subscription, group, task or
  Redis channel behind.
- A client that stops reading is ended with LIMIT_EXCEEDED and the seq to resume from,
  and resuming there loses nothing.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support.redis_server import RedisServer
from tests.support.servers import Server, environment, start_server, token_issuer

SEND = """mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) { session { id } turn { seq } } }"""
EVENTS = """subscription Events($id: ID!, $after: Int) {
  sessionEvents(sessionId: $id, afterSeq: $after) {
    __typename ... on TurnAdded { seq turn { content } } ... on AccessRevoked { reason } } }"""
SIDEBAR = "subscription { mySessions { change sessionId } }"
TURNS = (
    "query($id: ID!) { session(id: $id) { turns(first: 100) { edges { node { seq content } } } } }"
)


@dataclass
class Instance:
    """One `sessionhub serve` of the cluster."""

    server: Server

    @property
    def http(self) -> str:
        return self.server.base_url

    @property
    def port(self) -> int:
        return int(self.http.rsplit(":", 1)[1])

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"{self.http}/metrics", timeout=5).text
        found = re.findall(r"^sessionhub_realtime_(\w+?)(?:_total)? ([0-9.e+-]+)$", text, re.M)
        return {name: float(value) for name, value in found}


class Cluster:
    """Instances on one store (a SQLite file unless told another database URL), joined by
    Redis when given its URL."""

    def __init__(
        self,
        folder: Path,
        redis_url: str | None,
        database_url: str | None = None,
        **settings: str,
    ) -> None:
        self.folder = folder
        chat_apps = folder / "chat_apps.toml"
        chat_apps.write_text(
            '[[chat_apps]]\nid = "team"\nname = "Team"\n[chat_apps.settings]\n'
            "auto_generate_titles = false\nallow_sharing = true\n"
            "max_session_history = 5000\n"
        )
        self.env = environment(
            folder,
            SESSIONHUB_DATABASE_URL=database_url or f"sqlite:///{folder / 'shared.db'}",
            SESSIONHUB_CHAT_APPS_FILE=str(chat_apps),
            # Hundreds of sockets of one user, as hundreds of users would open them.
            SESSIONHUB_WS_MAX_CONNECTIONS_PER_PRINCIPAL="1000",
            **settings,
        )
        if redis_url:
            self.env["SESSIONHUB_REDIS_URL"] = redis_url
        self.issuer = token_issuer(self.env)
        self.instances: list[Instance] = []

    def start(self, name: str) -> Instance:
        instance = Instance(start_server(self.folder, self.env, name))
        self.instances.append(instance)
        return instance

    def stop(self) -> None:
        for instance in self.instances:
            instance.server.stop()

    def token(self, user: str) -> str:
        return self.issuer.issue(user, "acme")


def gql(instance: Instance, token: str, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = httpx.post(
        f"{instance.http}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def send(instance: Instance, token: str, session_id: str | None, content: str) -> tuple[str, int]:
    target = {"sessionId": session_id} if session_id else {"chatAppId": "team"}
    data = gql(instance, token, SEND, {"input": {**target, "content": content}})["sendMessage"]
    return data["session"]["id"], data["turn"]["seq"]


async def open_socket(instance: Instance, token: str, **options: Any) -> ClientConnection:
    ws = await connect(instance.ws, subprotocols=["graphql-transport-ws"], **options)  # type: ignore[list-item]
    await ws.send(orjson.dumps({"type": "connection_init", "payload": {"token": token}}).decode())
    assert orjson.loads(await ws.recv()) == {"type": "connection_ack"}
    return ws


async def subscribe(ws: ClientConnection, op_id: str, query: str, variables: dict) -> None:
    message = {
        "id": op_id,
        "type": "subscribe",
        "payload": {"query": query, "variables": variables},
    }
    await ws.send(orjson.dumps(message).decode())


async def receive(ws: ClientConnection, timeout: float = 15.0) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


def wait_until(condition: Any, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def pair(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[Cluster, Instance, Instance]]:
    cluster = Cluster(tmp_path, redis_server.url)
    try:
        a = cluster.start("A")
        b = cluster.start("B")
        yield cluster, a, b
    finally:
        cluster.stop()


async def test_a_turn_sent_through_a_reaches_a_subscriber_on_b_and_survives_a_redis_outage(
    pair: tuple[Cluster, Instance, Instance], redis_server: RedisServer
) -> None:
    cluster, a, b = pair
    alice = cluster.token("alice")
    session_id, _ = send(a, alice, None, "turn 1")

    ws = await open_socket(b, alice)
    await subscribe(ws, "s", EVENTS, {"id": session_id, "after": 0})
    received: list[tuple[int, str]] = []

    async def take(until_seq: int) -> None:
        while not received or received[-1][0] < until_seq:
            message = await receive(ws)
            assert message["type"] == "next", message
            event = message["payload"]["data"]["sessionEvents"]
            # After an outage the session's current facts come too (SessionUpdated).
            if event["__typename"] == "TurnAdded":
                received.append((event["seq"], event["turn"]["content"]))

    await take(1)
    wait_until(lambda: a.metrics().get("redis_connected") == 1, what="A on Redis")
    started = time.monotonic()
    _, seq = send(a, alice, session_id, "turn 2 through A")
    await take(seq)
    assert received[-1] == (2, "turn 2 through A")
    assert time.monotonic() - started < 5
    for i in range(3, 6):
        _, seq = send(a, alice, session_id, f"turn {i}")
    await take(seq)

    # Redis goes away mid-stream.
    redis_server.stop()
    wait_until(lambda: b.metrics().get("redis_connected") == 0, what="B to notice")
    for i in range(6, 11):
        send(a, alice, session_id, f"turn {i} while Redis is down")
    stored = gql(b, alice, TURNS, {"id": session_id})["session"]["turns"]["edges"]
    assert len(stored) == 10, "queries keep working on B"
    assert a.metrics()["redis_publish_failures"] >= 1

    redis_server.start()
    await take(10)
    _, seq = send(a, alice, session_id, "turn 11 after the outage")
    await take(seq)
    await ws.close()

    stored = gql(a, alice, TURNS, {"id": session_id})["session"]["turns"]["edges"]
    assert received == [(e["node"]["seq"], e["node"]["content"]) for e in stored]
    assert [s for s, _ in received] == list(range(1, 12))
    assert b.metrics()["redis_reconnects"] >= 1


@pytest.mark.parametrize("backend", ["sqlite", "mongo"])
async def test_appends_to_both_instances_at_once_reach_a_follower_in_order(
    tmp_path: Path, redis_server: RedisServer, backend: str, request: pytest.FixtureRequest
) -> None:
    with ExitStack() as stack:
        database_url = None
        if backend == "mongo":
            database_url = stack.enter_context(request.getfixturevalue("mongoeco").database())
        cluster = Cluster(tmp_path, redis_server.url, database_url)
        stack.callback(cluster.stop)
        a, b = cluster.start("A"), cluster.start("B")
        alice = cluster.token("alice")
        session_id, _ = send(a, alice, None, "opening")
        follower = await open_socket(b, alice)
        await subscribe(follower, "s", EVENTS, {"id": session_id, "after": 0})
        assert (await receive(follower))["payload"]["data"]["sessionEvents"]["seq"] == 1

        async def append(client: httpx.AsyncClient, instance: Instance, i: int) -> int:
            response = await client.post(
                f"{instance.http}/graphql",
                json={
                    "query": SEND,
                    "variables": {"input": {"sessionId": session_id, "content": f"turn {i}"}},
                },
                headers={"Authorization": f"Bearer {alice}"},
            )
            body = response.json()
            assert "errors" not in body, body
            return body["data"]["sendMessage"]["turn"]["seq"]

        async with httpx.AsyncClient(timeout=60) as client:
            seqs = await asyncio.gather(*(append(client, (a, b)[i % 2], i) for i in range(2, 42)))
        assert sorted(seqs) == list(range(2, 42)), "each append got a seq of its own"
        followed = [
            (await receive(follower))["payload"]["data"]["sessionEvents"]["seq"] for _ in range(40)
        ]
        assert followed == list(range(2, 42)), "the follower on B got every turn, in order"
        stored = gql(a, alice, TURNS, {"id": session_id})["session"]["turns"]["edges"]
        assert [e["node"]["seq"] for e in stored] == list(range(1, 42))
        await follower.close()


async def test_revocation_and_sidebar_cross_instances(
    pair: tuple[Cluster, Instance, Instance],
) -> None:
    cluster, a, b = pair
    alice, bob = cluster.token("alice"), cluster.token("bob")
    session_id, _ = send(a, alice, None, "shared")
    sidebar = await open_socket(b, bob)
    await subscribe(sidebar, "side", SIDEBAR, {})
    wait_until(lambda: b.metrics().get("redis_channels_subscribed") == 2, what="sidebar channels")

    share = gql(
        a,
        alice,
        "mutation($i: ShareInput!) { shareSession(input: $i) { id } }",
        {"i": {"sessionId": session_id, "granteeKind": "USER", "userId": "bob"}},
    )["shareSession"]["id"]
    shared = await receive(sidebar)
    assert shared["payload"]["data"]["mySessions"] == {"change": "SHARED", "sessionId": session_id}

    follower = await open_socket(b, bob)
    await subscribe(follower, "s", EVENTS, {"id": session_id, "after": 0})
    assert (await receive(follower))["payload"]["data"]["sessionEvents"]["seq"] == 1
    gql(a, alice, "mutation($id: ID!) { revokeShare(id: $id) { id } }", {"id": share})
    revoked = await receive(follower)
    assert revoked["payload"]["data"]["sessionEvents"]["__typename"] == "AccessRevoked"
    assert await receive(follower) == {"type": "complete", "id": "s"}
    unshared = await receive(sidebar)
    assert unshared["payload"]["data"]["mySessions"]["change"] == "UNSHARED"
    await follower.close()
    await sidebar.close()


async def test_hundreds_of_abrupt_disconnects_leave_nothing_behind(
    pair: tuple[Cluster, Instance, Instance], redis_server: RedisServer
) -> None:
    cluster, a, b = pair
    token = cluster.token("alice")
    sessions = [send(a, token, None, f"session {i}")[0] for i in range(10)]

    async def client(i: int) -> None:
        ws = await open_socket(b, token)
        await subscribe(ws, "s", EVENTS, {"id": sessions[i % 10], "after": 0})
        await subscribe(ws, "side", SIDEBAR, {})
        first = await receive(ws)
        assert first["id"] == "s"
        # Gone without a close frame, as when a laptop lid shuts.
        ws.transport.abort()

    for start in range(0, 300, 50):
        await asyncio.gather(*(client(i) for i in range(start, start + 50)))

    wait_until(lambda: b.metrics()["ws_connections"] == 0, what="B to see every disconnect")
    wait_until(lambda: b.metrics()["redis_channels_subscribed"] == 0, what="unsubscribed")
    metrics = b.metrics()
    held = {
        name: metrics[name]
        for name in (
            "members",
            "groups",
            "channels",
            "channel_workers",
            "ws_operations",
            "ws_tasks",
            "ws_queued_messages",
        )
    }
    assert held == dict.fromkeys(held, 0.0)
    assert [c for c in redis_server.channels() if c.startswith(("s:", "u:", "e:"))] == []
    # And B still serves.
    ws = await open_socket(b, token)
    await subscribe(ws, "s", EVENTS, {"id": sessions[0], "after": 0})
    assert (await receive(ws))["payload"]["data"]["sessionEvents"]["seq"] == 1
    await ws.close()


async def test_a_client_that_stops_reading_is_ended_and_resumes_without_loss(
    tmp_path: Path,
) -> None:
    cluster = Cluster(
        tmp_path,
        None,
        SESSIONHUB_SUBSCRIPTION_QUEUE_LIMIT="10",
        SESSIONHUB_MAX_CONTENT_CHARS="1000000",
    )
    try:
        server = cluster.start("solo")
        alice = cluster.token("alice")
        session_id, _ = send(server, alice, None, "turn 1")
        # A small receive buffer and queue, and no compression (the turns are repetitive),
        # so that the server feels the stall soon.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        slow = await open_socket(server, alice, sock=sock, max_queue=1, compression=None)
        await subscribe(slow, "s", EVENTS, {"id": session_id, "after": 0})
        wait_until(lambda: server.metrics()["members"] == 1, what="the subscription")

        big = "x" * 400_000
        last = 1
        while server.metrics()["overflows"] == 0:
            _, last = send(server, alice, session_id, f"{last + 1} {big}")
            assert last < 80, "the server never ended the stalled subscription"

        seqs: list[int] = []
        while True:
            message = await receive(slow)
            if message["type"] != "next":
                break
            seqs.append(message["payload"]["data"]["sessionEvents"]["seq"])
        assert message["type"] == "error", message
        error = message["payload"][0]
        assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
        resume = error["extensions"]["resumeAfterSeq"]
        assert error["message"] == f"too slow: resume with afterSeq {resume}"
        assert seqs == list(range(1, resume + 1))
        await slow.close()

        again = await open_socket(server, alice)
        await subscribe(again, "s", EVENTS, {"id": session_id, "after": resume})
        rest = [
            (await receive(again))["payload"]["data"]["sessionEvents"]["seq"]
            for _ in range(resume, last)
        ]
        assert rest == list(range(resume + 1, last + 1))
        await again.close()
    finally:
        cluster.stop()
