"""Fan-out benchmark: how long a new turn takes to reach 1, 100 and 1,000 WebSocket
subscribers of one session, on one instance and across two instances through Redis.

    .venv/bin/python bench/fanout.py [--subscribers 1 100 1000] [--turns T]
                                     [--scenarios single redis] [--output PATH]

1. Starts `sessionhub serve` processes on free 127.0.0.1 ports with a fresh SQLite file
   and JWT secret in a temporary folder: scenario `single` runs one instance with the
   in-process broker; scenario `redis` starts its own `redis-server` on a free port and two
   instances on the same SQLite file (subscribers on B, sends on A).
2. Opens N WebSocket connections (graphql-transport-ws) to the subscribers' instance, each
   subscribing to `sessionEvents` of one session with the same document (a TurnAdded with
   the turn's seq, role, content and author).
3. Sends T turns one after the other with `sendMessage` over HTTP to the sending instance
   and notes, for every subscriber, when the turn's message arrives. The latency of one
   delivery is arrival time minus the time the HTTP request was sent (so it includes the
   mutation itself: the write, the commit, the publish). The next turn is sent once every
   subscriber has the previous one.
4. Prints a table (p50 / p99 / max of all deliveries, p50 / p99 of the last subscriber to
   get each turn, p50 of the mutation's own round trip, and the CPU time the subscribers'
   instance spent per measured turn, from /proc) and writes it, with machine facts, to
   bench/results/fanout.json.

The load generator runs on the same machine as the server(s) and shares its cores; it is
kept light (websockets' sans-I/O protocol on raw asyncio transports under uvloop, no task
per connection), but the arrival times of the last subscribers include the time the
generator takes to read the first ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _paths  # noqa: F401  (tests.support importable)
import httpx2 as httpx
import options
import orjson
from machine import cpu_seconds, machine_facts
from measured_server import TOKEN_TTL_S
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from tests.support.redis_server import RedisServer
from tests.support.servers import Server, environment, running_server, token_issuer

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results" / "fanout.json"
DELIVERY_TIMEOUT_S = 30.0
WARMUP_TURNS = 3

SEND = """mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) { session { id } turn { seq } } }"""

EVENTS = """subscription Follow($id: ID!) {
  sessionEvents(sessionId: $id) {
    __typename
    ... on TurnAdded { seq turn { id role authorId content createdAt } }
  }
}"""

CHAT_APPS = """
[[chat_apps]]
id = "bench"
name = "Bench"
[chat_apps.settings]
auto_generate_titles = false
allow_sharing = true
max_session_history = 100000
"""


# The deployment


def address(server: Server) -> str:
    """The server's host:port."""
    return server.base_url.removeprefix("http://")


@contextmanager
def deployment(scenario: str) -> Iterator[tuple[str, str, str, int]]:
    """(sending host, subscribers' host, a token of alice@acme, the subscribers' instance's
    pid) of a running deployment."""
    with tempfile.TemporaryDirectory(prefix=f"fanout-{scenario}-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        (folder / "chat_apps.toml").write_text(CHAT_APPS)
        env = environment(
            folder,
            SESSIONHUB_CHAT_APPS_FILE=str(folder / "chat_apps.toml"),
            SESSIONHUB_SUBSCRIPTION_QUEUE_LIMIT="10000",
            # Every subscriber here is alice: one token for a thousand sockets.
            SESSIONHUB_WS_MAX_CONNECTIONS_PER_PRINCIPAL="10000",
        )
        jwt = token_issuer(env).issue("alice", "acme", ttl_seconds=TOKEN_TTL_S)
        if scenario == "single":
            server = stack.enter_context(running_server(folder, env))
            yield address(server), address(server), jwt, server.process.pid
        else:
            redis = RedisServer(folder)
            redis.start()
            stack.callback(redis.stop)
            env["SESSIONHUB_REDIS_URL"] = redis.url
            a = stack.enter_context(running_server(folder, env, "A"))
            b = stack.enter_context(running_server(folder, env, "B"))
            yield address(a), address(b), jwt, b.process.pid


# Subscribers: websockets' sans-I/O protocol on plain asyncio transports


class Subscriber(asyncio.Protocol):
    def __init__(
        self, host: str, jwt: str, session_id: str, on_turn: Callable[[int, float], None]
    ) -> None:
        self.protocol = ClientProtocol(
            parse_uri(f"ws://{host}/graphql"),
            subprotocols=[Subprotocol("graphql-transport-ws")],
        )
        self.jwt = jwt
        self.session_id = session_id
        self.on_turn = on_turn
        self.ready = asyncio.get_running_loop().create_future()
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                self._send({"type": "connection_init", "payload": {"token": self.jwt}})
            elif event.opcode is Opcode.TEXT:
                self._message(orjson.loads(event.data), now)
        self._flush()

    def _message(self, message: dict[str, Any], now: float) -> None:
        kind = message.get("type")
        if kind == "connection_ack":
            self._send(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": EVENTS, "variables": {"id": self.session_id}},
                }
            )
            if not self.ready.done():
                self.ready.set_result(None)
        elif kind == "next":
            event = message["payload"]["data"]["sessionEvents"]
            if event["__typename"] == "TurnAdded":
                self.on_turn(event["seq"], now)
        elif kind in ("error", "complete"):
            raise SystemExit(f"subscription ended: {message}")

    def _send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(orjson.dumps(message))

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.transport.write(chunk)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost: {exc}"))


# One measurement


@dataclass
class Result:
    scenario: str
    subscribers: int
    turns: int
    deliveries: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    last_p50_ms: float
    last_p99_ms: float
    mutation_p50_ms: float
    mutation_p99_ms: float
    mutation_max_ms: float
    server_cpu_ms_per_turn: float


def percentile(values: list[float], q: float) -> float:
    """The value at rank round(q * (n - 1)) (q from 0 to 1): this benchmark's own, not the
    nearest rank of bench/report.py, so that its figures compare with those kept before."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def members(host: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://{host}/metrics")).text
    for line in text.splitlines():
        if line.startswith("sessionhub_realtime_members "):
            return float(line.split()[1])
    return 0.0


async def measure(
    scenario: str, send_host: str, sub_host: str, jwt: str, count: int, turns: int, pid: int
) -> Result:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(
        base_url=f"http://{send_host}", headers={"Authorization": f"Bearer {jwt}"}, timeout=60
    ) as http:

        async def send(content: str, session_id: str | None = None) -> tuple[str, int]:
            target = {"sessionId": session_id} if session_id else {"chatAppId": "bench"}
            response = await http.post(
                "/graphql",
                json={"query": SEND, "variables": {"input": {**target, "content": content}}},
            )
            body = response.json()
            if "errors" in body:
                raise SystemExit(f"sendMessage failed: {body['errors']}")
            data = body["data"]["sendMessage"]
            return data["session"]["id"], data["turn"]["seq"]

        session_id, _ = await send("The opening message of a session everyone follows.")
        arrivals: dict[int, list[float]] = {}
        complete: dict[int, asyncio.Future[None]] = {}

        def on_turn(seq: int, at: float) -> None:
            got = arrivals.setdefault(seq, [])
            got.append(at)
            if len(got) == count and seq in complete and not complete[seq].done():
                complete[seq].set_result(None)

        subscribers: list[Subscriber] = []
        host, port = sub_host.split(":")
        for start in range(0, count, 100):
            batch = []
            for _ in range(min(100, count - start)):
                _, sub = await loop.create_connection(
                    lambda: Subscriber(sub_host, jwt, session_id, on_turn), host, int(port)
                )
                subscribers.append(sub)
                batch.append(sub.ready)
            await asyncio.gather(*batch)
        deadline = time.monotonic() + 60
        while await members(sub_host) < count:
            if time.monotonic() > deadline:
                raise SystemExit("the subscriptions did not all start")
            await asyncio.sleep(0.05)

        latencies: list[float] = []
        last: list[float] = []
        mutations: list[float] = []
        text = "A new turn that every follower of the session should see within milliseconds."
        cpu_before = 0.0
        for i in range(WARMUP_TURNS + turns):
            if i == WARMUP_TURNS:
                cpu_before = cpu_seconds(pid)
            sent = time.perf_counter()
            future = loop.create_future()
            seq_holder: dict[str, int] = {}
            # The seq is known only from the answer; deliveries may come first.
            pending = asyncio.ensure_future(send(f"{text} ({i})", session_id))
            _, seq = await pending
            mutation_ms = (time.perf_counter() - sent) * 1000
            seq_holder["seq"] = seq
            complete[seq] = future
            if len(arrivals.get(seq, ())) == count:
                future.set_result(None)
            try:
                await asyncio.wait_for(future, DELIVERY_TIMEOUT_S)
            except TimeoutError:
                got = len(arrivals.get(seq, ()))
                raise SystemExit(f"turn {seq} reached {got} of {count} subscribers") from None
            if i >= WARMUP_TURNS:
                times = [(t - sent) * 1000 for t in arrivals[seq]]
                latencies.extend(times)
                last.append(max(times))
                mutations.append(mutation_ms)
            del arrivals[seq]
            await asyncio.sleep(0.02)
        cpu_ms_per_turn = (cpu_seconds(pid) - cpu_before) * 1000 / turns

        for sub in subscribers:
            if sub.transport is not None:
                sub.transport.close()
        return Result(
            scenario=scenario,
            subscribers=count,
            turns=turns,
            deliveries=len(latencies),
            p50_ms=round(percentile(latencies, 0.50), 2),
            p99_ms=round(percentile(latencies, 0.99), 2),
            max_ms=round(max(latencies), 2),
            last_p50_ms=round(percentile(last, 0.50), 2),
            last_p99_ms=round(percentile(last, 0.99), 2),
            mutation_p50_ms=round(statistics.median(mutations), 2),
            mutation_p99_ms=round(percentile(mutations, 0.99), 2),
            mutation_max_ms=round(max(mutations), 2),
            server_cpu_ms_per_turn=round(cpu_ms_per_turn, 2),
        )


# Main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--turns", type=int, default=200, help="measured turns per run [200]")
    parser.add_argument(
        "--scenarios", nargs="+", choices=["single", "redis"], default=["single", "redis"]
    )
    options.add_output(parser, RESULTS_FILE)
    args = parser.parse_args()

    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass

    facts = machine_facts()
    print(f"machine: {facts['cpu_model']}, {facts['nproc']} cores usable, Python {facts['python']}")
    print("the load generator shares those cores with the server(s)\n")
    results: list[Result] = []
    for scenario in args.scenarios:
        with deployment(scenario) as (send_host, sub_host, jwt, pid):
            for count in args.subscribers:
                result = asyncio.run(
                    measure(scenario, send_host, sub_host, jwt, count, args.turns, pid)
                )
                results.append(result)
                print(_row(result), flush=True)

    print()
    print(_table(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "machine": facts,
                "parameters": {
                    "turns": args.turns,
                    "warmup_turns": WARMUP_TURNS,
                    "subscribers": args.subscribers,
                    "scenarios": args.scenarios,
                },
                "latency": "arrival at the subscriber minus the start of the sendMessage request",
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten to {args.output}")


HEADERS = ["scenario", "subscribers", "deliveries", "p50 ms", "p99 ms", "max ms",
           "last p50 ms", "last p99 ms", "mutation p50 ms", "mutation p99 ms",
           "mutation max ms", "server cpu ms/turn"]  # fmt: skip


def _cells(r: Result) -> list[str]:
    scenario = "one instance" if r.scenario == "single" else "A -> Redis -> B"
    return [scenario, str(r.subscribers), str(r.deliveries), f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}",
            f"{r.max_ms:.1f}", f"{r.last_p50_ms:.1f}", f"{r.last_p99_ms:.1f}",
            f"{r.mutation_p50_ms:.1f}", f"{r.mutation_p99_ms:.1f}",
            f"{r.mutation_max_ms:.1f}", f"{r.server_cpu_ms_per_turn:.1f}"]  # fmt: skip


def _row(r: Result) -> str:
    return "  ".join(f"{h}={c}" for h, c in zip(HEADERS, _cells(r), strict=True))


def _table(results: list[Result]) -> str:
    rows = [HEADERS, *(_cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
