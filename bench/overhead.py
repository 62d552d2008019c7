"""GraphQL overhead: one hot read through the full stack and through a bare endpoint.

    .venv/bin/python bench/overhead.py [--concurrency C] [--rounds R] [--requests N]
                                       [--client raw|httpx] [--profile]

1. Starts `sessionhub serve` (measured_server.py: a temporary folder, a fresh SQLite
   file and JWT secret) and writes a small store through the GraphQL API: a few sessions
   whose agent turns all carry one to three tool invocations.
2. Starts a second uvicorn process on the same SQLite file: bench/bare_endpoint.py, which
   answers the same read from the same store with the same services and no GraphQL.
3. Checks that, for every session, the bare endpoint's body is byte for byte the `data`
   of the GraphQL response.
4. Loads both with the same client at the same concurrency in interleaved rounds (the order
   alternates), and reports requests/s, p50/p99 and server CPU per request (from /proc)
   for each, and the ratio GraphQL / bare of requests/s.
5. With --profile, samples each server with py-spy during one more load phase of its own
   and prints where their CPU time goes, side by side.

The JSON goes to bench/results/overhead.json, py-spy's collapsed stacks to
bench/results/overhead-profile-{graphql,bare}.txt (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _paths  # noqa: F401  (tests.support importable)
import httpx2 as httpx
import lifecycle
import options
import orjson
from machine import cpu_seconds, machine_facts
from measured_server import Server, running_server, token_for
from report import latency_fields, print_aligned, write_report

from tests.support import servers

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results" / "overhead.json"
BARE = (sys.executable, str(HERE / "bare_endpoint.py"))

# The hot read: a session's last 20 turns with their tool invocations.
LAST_20 = """query Last20($id: ID!) {
  session(id: $id) {
    id
    title
    turnCount
    turns(last: 20) {
      pageInfo { hasPreviousPage startCursor }
      edges {
        node {
          id seq role authorId content createdAt
          usage { inputTokens outputTokens }
          toolInvocations { id name status input output durationMs }
        }
      }
    }
  }
}"""


# Data


async def generate(server: Server, token: str, args: argparse.Namespace) -> list[str]:
    """`--sessions` sessions of `--turns-per-session` turns: a user message, then an agent
    answer with one to three tool invocations, and so on."""
    vocabulary = lifecycle.Vocabulary(args.seed)
    async with lifecycle.async_client(server, token, 4) as client:
        apps = await lifecycle.pick_chat_apps(client, args.turns_per_session)

        async def one(index: int) -> str:
            script = lifecycle.session_script(
                vocabulary, args.seed, index, args.turns_per_session, tool_share=1.0
            )
            return await lifecycle.write_session(client, script, apps[index % len(apps)])

        return list(await asyncio.gather(*(one(i) for i in range(args.sessions))))


# The bare endpoint's process


def running_bare(server: Server) -> AbstractContextManager[Server]:
    """bare_endpoint.py beside `server`: the same settings, the same SQLite file."""
    return servers.running_server(server.folder, server.env, "bare", BARE)


# Requests: the same body for both clients


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    base_url: str
    path: str
    bodies: list[bytes]  # one per session
    ok_prefix: bytes  # a successful answer starts with it

    def body(self, i: int) -> bytes:
        return self.bodies[i % len(self.bodies)]


def graphql_target(server: Server, session_ids: list[str]) -> Target:
    bodies = [
        orjson.dumps({"query": LAST_20, "operationName": "Last20", "variables": {"id": s}})
        for s in session_ids
    ]
    return Target("graphql", server.base_url, "/graphql", bodies, b'{"data":{"session":{')


def bare_target(bare: Server, session_ids: list[str]) -> Target:
    bodies = [orjson.dumps({"id": s}) for s in session_ids]
    return Target("bare", bare.base_url, "/last20", bodies, b'{"session":{')


class Failure(Exception):
    pass


# Clients. Both keep `concurrency` keep-alive connections and send request i with body i.


class HttpxClient:
    """httpx2, as the other benchmarks use."""

    def __init__(self, target: Target, token: str, concurrency: int) -> None:
        self.target = target
        self.client = httpx.AsyncClient(
            base_url=target.base_url,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=lifecycle.REQUEST_TIMEOUT_S,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    async def request(self, i: int, _connection: int) -> bytes:
        response = await self.client.post(self.target.path, content=self.target.body(i))
        if response.status_code != 200:
            raise Failure(f"HTTP {response.status_code}: {response.text[:300]}")
        return response.content

    async def close(self) -> None:
        await self.client.aclose()


class RawClient:
    """HTTP/1.1 over asyncio streams: one connection per worker, the requests' bytes built
    once, the answer read by Content-Length. Costs a fraction of httpx's CPU, which matters
    when the client shares the machine's cores with the server."""

    def __init__(self, target: Target, token: str, concurrency: int) -> None:
        self.target = target
        host_port = target.base_url.removeprefix("http://")
        self.host, port = host_port.split(":")
        self.port = int(port)
        head = (
            f"POST {target.path} HTTP/1.1\r\nHost: {host_port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            "Accept: application/json\r\n"
        ).encode()
        self.requests = [
            head + b"Content-Length: %d\r\n\r\n" % len(body) + body for body in target.bodies
        ]
        self.connections: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def request(self, i: int, connection: int) -> bytes:
        try:
            return await self._request(i, connection)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            # The server closes a connection left idle past its keep-alive timeout (between
            # rounds): once, on a fresh connection.
            self._drop(connection)
            try:
                return await self._request(i, connection)
            except BaseException:
                self._drop(connection)
                raise

    def _drop(self, connection: int) -> None:
        pair = self.connections.pop(connection, None)
        if pair is not None:
            pair[1].close()

    async def _request(self, i: int, connection: int) -> bytes:
        pair = self.connections.get(connection)
        if pair is None:
            pair = await asyncio.open_connection(self.host, self.port)
            self.connections[connection] = pair
        reader, writer = pair
        writer.write(self.requests[i % len(self.requests)])
        head = await reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        length = -1
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        if length < 0:
            raise Failure("an answer without Content-Length")
        body = await reader.readexactly(length)
        if status != b"200":
            raise Failure(f"HTTP {status.decode()}: {body[:300]!r}")
        return body

    async def close(self) -> None:
        for _, writer in self.connections.values():
            writer.close()
        self.connections.clear()


CLIENTS: dict[str, Callable[[Target, str, int], Any]] = {"raw": RawClient, "httpx": HttpxClient}


# Load


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


async def run_load(
    client: Any, total: int, concurrency: int, start: int, tally: Tally, pid: int | None = None
) -> None:
    counter = iter(range(start, start + total))
    ok_prefix = client.target.ok_prefix

    async def worker(connection: int) -> None:
        for i in counter:
            began = time.perf_counter_ns()
            try:
                body = await client.request(i, connection)
                if not body.startswith(ok_prefix) or b'"errors"' in body[:12]:
                    raise Failure(body[:300].decode(errors="replace"))
            except (Failure, httpx.HTTPError, OSError, asyncio.IncompleteReadError) as exc:
                tally.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            tally.latencies_ms.append((time.perf_counter_ns() - began) / 1e6)

    cpu_before = 0.0 if pid is None else cpu_seconds(pid)
    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in range(concurrency)))
    tally.seconds += time.perf_counter() - began
    if pid is not None:
        tally.server_cpu_seconds += cpu_seconds(pid) - cpu_before


@dataclass
class Summary:
    target: str
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    server_cpu_ms_per_request: float
    errors: int
    error_samples: list[str]


def summarise(name: str, tally: Tally) -> Summary:
    values = sorted(tally.latencies_ms)
    return Summary(
        target=name,
        requests=len(values),
        seconds=round(tally.seconds, 3),
        requests_per_second=round(len(values) / tally.seconds, 1) if tally.seconds else 0.0,
        **latency_fields(values),
        server_cpu_ms_per_request=round(1000 * tally.server_cpu_seconds / len(values), 3)
        if values
        else float("nan"),
        errors=len(tally.errors),
        error_samples=tally.errors[:5],
    )


# Checks


async def check_same_answers(
    graphql: Target, bare: Target, token: str, session_ids: list[str]
) -> int:
    """Every session's GraphQL body must be `{"data":` + the bare body + `}`."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(headers=headers, timeout=lifecycle.REQUEST_TIMEOUT_S) as client:
        for i, session_id in enumerate(session_ids):
            full = await client.post(graphql.base_url + graphql.path, content=graphql.body(i))
            plain = await client.post(bare.base_url + bare.path, content=bare.body(i))
            if full.status_code != 200 or plain.status_code != 200:
                raise SystemExit(
                    f"session {session_id}: HTTP {full.status_code} / {plain.status_code}\n"
                    f"{full.text[:500]}\n{plain.text[:500]}"
                )
            expected = b'{"data":' + plain.content + b"}"
            if full.content != expected:
                first = next(
                    (
                        k
                        for k, (a, b) in enumerate(zip(full.content, expected, strict=False))
                        if a != b
                    ),
                    min(len(full.content), len(expected)),
                )
                raise SystemExit(
                    f"session {session_id}: the answers differ at byte {first}:\n"
                    f"  graphql: {full.content[max(0, first - 80) : first + 120]!r}\n"
                    f"  bare:    {expected[max(0, first - 80) : first + 120]!r}"
                )
            turns = orjson.loads(plain.content)["session"]["turns"]["edges"]
            if len(turns) != 20 or not any(e["node"]["toolInvocations"] for e in turns):
                raise SystemExit(f"session {session_id}: not 20 turns with tool invocations")
        return len(full.content)


# Profile


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


RATE_HZ = 250

LAYERS = {
    "store: sessionhub.storage, aiosqlite, SQLite": ("/storage/", "aiosqlite", "sqlean"),
    "graphql-core": ("graphql/",),
    "strawberry": ("strawberry/",),
    "sessionhub: schema, resolvers, domain, auth, server": ("main/", "sessionhub/", "bench/"),
    "orjson": ("orjson",),
    "PyJWT": ("jwt/",),
    "starlette": ("starlette/",),
    "uvicorn, httptools": ("uvicorn/", "httptools"),
    "event loop (uvloop, asyncio: I/O, callbacks)": ("asyncio/", "uvloop", "contextlib"),
}

# Functions whose inclusive time says where a request goes (those present are shown).
PHASES = (
    "GraphQLHTTP.handle",
    "build_app.<locals>.last20",
    "TokenVerifier.principal_from_header",
    "Schema.execute",
    "Schema._prepare_operation_async",
    "Schema._execute_operation",
    "Seam.execute",
    "Seam.run",
    "Documents.prepare",
    "AuthExtension.resolve_async",
    "SessionService.find",
    "SessionService.turns",
    "Session.turns",
    "FastExecutor.execute_fields",
    "Response.__call__",
    "RequestResponseCycle.send",
)


def _function(frame: str) -> str:
    """`name (path:line)` -> `name (path)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def summarise_profile(collapsed: Path, requests: int, top: int = 20) -> dict[str, Any]:
    """py-spy's collapsed stacks as CPU milliseconds per request: by thread (the event loop
    is the one that serialises requests; the others are aiosqlite's SQLite threads), by
    layer (the innermost frame of a known package), by phase (inclusive time of the
    functions in PHASES) and the functions with the most own time."""
    ms = 1000.0 / RATE_HZ / max(requests, 1)
    threads: collections.Counter[str] = collections.Counter()
    layers: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    phases: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = "event loop" if any("Runner.run" in f for f in frames) else "other threads"
        threads[thread] += count
        own[_function(frames[-1])] += count
        names = {_function(f).split(" (")[0] for f in frames}
        for phase in PHASES:
            if phase in names:
                phases[phase] += count
        layer = "other"
        for frame in reversed(frames):
            hit = next((k for k, keys in LAYERS.items() if any(x in frame for x in keys)), None)
            if hit:
                layer = hit
                break
        layers[thread][layer] += count
    total = sum(threads.values())
    return {
        "samples": total,
        "cpu_ms_per_request": round(total * ms, 3),
        "threads_ms_per_request": {k: round(v * ms, 3) for k, v in threads.most_common()},
        "layers_ms_per_request": {
            thread: {k: round(v * ms, 3) for k, v in counter.most_common()}
            for thread, counter in layers.items()
        },
        "phases_ms_per_request": {p: round(phases[p] * ms, 3) for p in PHASES if phases[p]},
        "own_ms_per_request": [(k, round(v * ms, 3)) for k, v in own.most_common(top)],
    }


async def profile(
    process: subprocess.Popen[bytes],
    target: Target,
    token: str,
    args: argparse.Namespace,
    folder: Path,
) -> dict[str, Any] | None:
    binary = py_spy()
    if binary is None:
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return None
    raw = folder / f"profile-{target.name}.txt"
    recorder = subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(process.pid),
            "--rate",
            str(RATE_HZ),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    await asyncio.sleep(1.0)  # attached
    client = CLIENTS[args.client](target, token, args.concurrency)
    tally = Tally()
    try:
        await run_load(client, args.profile_requests, args.concurrency, 0, tally)
    finally:
        await client.close()
        recorder.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        _, stderr = recorder.communicate(timeout=60)
    if not raw.exists():
        print(f"py-spy wrote nothing: {stderr.decode(errors='replace')[-800:]}", file=sys.stderr)
        return None
    kept = HERE / "results" / f"overhead-profile-{target.name}.txt"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw, kept)
    # Idle time is not sampled; the request count includes the second of attaching.
    summary = summarise_profile(raw, len(tally.latencies_ms))
    summary["requests_per_second_while_sampled"] = summarise(target.name, tally).requests_per_second
    summary["collapsed_stacks"] = str(kept)
    return summary


# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lifecycle.add_session_options(parser, sessions=8, turns_per_session=40)
    parser.add_argument("--concurrency", type=int, default=8, help="connections per target (8)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (10)")
    options.add_requests(parser, "target and round", requests=400, warmup=300)
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="raw",
        help="raw keep-alive HTTP/1.1 client (default) or httpx2",
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the GraphQL server with py-spy"
    )
    parser.add_argument(
        "--profile-requests", type=int, default=3000, help="requests while sampling (3000)"
    )
    options.add_output(parser, RESULTS_FILE)
    args = parser.parse_args(argv)
    if args.turns_per_session < 40:
        parser.error("--turns-per-session must be at least 40 (20 agent turns to read)")
    for name in ("sessions", "concurrency", "rounds", "requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


async def benchmark(
    server: Server, bare: Server, token: str, session_ids: list[str], args
) -> dict[str, Any]:
    targets = [graphql_target(server, session_ids), bare_target(bare, session_ids)]
    pids = {"graphql": server.process.pid, "bare": bare.process.pid}
    response_bytes = await check_same_answers(*targets, token, session_ids)
    print(f"Same answers from both: {response_bytes} bytes per GraphQL response\n", flush=True)
    clients = {t.name: CLIENTS[args.client](t, token, args.concurrency) for t in targets}
    tallies = {t.name: Tally() for t in targets}
    try:
        for t in targets:
            await run_load(clients[t.name], args.warmup, args.concurrency, 0, Tally())
        for round_ in range(args.rounds):
            order = targets if round_ % 2 == 0 else targets[::-1]
            for t in order:
                start = round_ * args.requests
                await run_load(
                    clients[t.name],
                    args.requests,
                    args.concurrency,
                    start,
                    tallies[t.name],
                    pids[t.name],
                )
    finally:
        for c in clients.values():
            await c.close()
    summaries = [summarise(t.name, tallies[t.name]) for t in targets]
    result: dict[str, Any] = {"response_bytes": response_bytes, "results": summaries}
    gql, plain = summaries
    result["ratio"] = (
        round(gql.requests_per_second / plain.requests_per_second, 3)
        if plain.requests_per_second
        else None
    )
    if args.profile:
        result["profile"] = {}
        for t, process in zip(targets, (server.process, bare.process), strict=True):
            print(f"Sampling the {t.name} server with py-spy ...", flush=True)
            result["profile"][t.name] = await profile(process, t, token, args, server.folder)
    return result


def print_report(result: dict[str, Any], args: argparse.Namespace) -> None:
    header = (
        "target",
        "requests",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU ms/req",
        "errors",
    )
    rows = [
        (
            s.target,
            str(s.requests),
            f"{s.requests_per_second:.1f}",
            f"{s.p50_ms:.2f}",
            f"{s.p99_ms:.2f}",
            f"{s.max_ms:.2f}",
            f"{s.server_cpu_ms_per_request:.2f}",
            str(s.errors),
        )
        for s in result["results"]
    ]
    print_aligned(header, rows, left=())
    print(
        f"\nGraphQL / bare: {result['ratio']:.1%}  "
        f"(client {args.client}, concurrency {args.concurrency}, {args.rounds} rounds)"
    )
    for s in result["results"]:
        for sample in s.error_samples:
            print(f"  error ({s.target}): {sample}")
    profiles = {k: v for k, v in (result.get("profile") or {}).items() if v}
    if profiles:
        print_profiles(profiles)


def print_profiles(profiles: dict[str, dict[str, Any]]) -> None:
    names = list(profiles)
    print(
        "\nServer CPU ms per request, sampled by py-spy ("
        + ", ".join(
            f"{n}: {profiles[n]['requests_per_second_while_sampled']} requests/s while sampled"
            for n in names
        )
        + ")"
    )

    def table(title: str, rows: dict[str, list[float]]) -> None:
        width = max([len(title), *(len(k) for k in rows)])
        print(f"\n  {title.ljust(width)}  " + "  ".join(n.rjust(8) for n in names))
        for key, values in rows.items():
            print(f"  {key.ljust(width)}  " + "  ".join(f"{v:8.3f}" for v in values))

    def rows_of(pick: Callable[[dict[str, Any]], dict[str, float]]) -> dict[str, list[float]]:
        keys: list[str] = []
        for n in names:
            keys += [k for k in pick(profiles[n]) if k not in keys]
        return {k: [pick(profiles[n]).get(k, 0.0) for n in names] for k in keys}

    table(
        "all threads",
        {"total": [profiles[n]["cpu_ms_per_request"] for n in names]}
        | rows_of(lambda p: p["threads_ms_per_request"]),
    )
    for thread in ("event loop", "other threads"):
        table(
            f"{thread}, by layer",
            rows_of(lambda p, t=thread: p["layers_ms_per_request"].get(t, {})),
        )
    table("phases (inclusive)", rows_of(lambda p: p["phases_ms_per_request"]))
    first = profiles[names[0]]
    print(f"\n  Most own time ({names[0]}):")
    for name, value in first["own_ms_per_request"][:15]:
        print(f"  {value:8.3f}  {name}")
    for n in names:
        print(f"  Collapsed stacks ({n}): {profiles[n]['collapsed_stacks']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine_facts()
    load_at_start = os.getloadavg()
    print(f"CPU:    {facts['cpu_model']}  (nproc {facts['nproc']})")
    print(f"Python: {facts['python']}, SQLite {facts['sqlite']}\n", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="sessionhub-overhead-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        token = token_for(server, "bench-user", "bench-entity")
        print(
            f"Generating {args.sessions} sessions x {args.turns_per_session} turns ...",
            flush=True,
        )
        session_ids = asyncio.run(generate(server, token, args))
        with running_bare(server) as bare:
            result = asyncio.run(benchmark(server, bare, token, session_ids, args))
    print_report(result, args)
    output = {
        "benchmark": "overhead",
        "machine": facts,
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "query": LAST_20,
        **{k: v for k, v in result.items() if k != "results"},
        "results": [asdict(s) for s in result["results"]],
    }
    write_report(args.output, output)
    return 1 if any(s.errors for s in result["results"]) else 0


if __name__ == "__main__":
    sys.exit(main())
