"""Lifecycle benchmark: a real `sessionhub serve` process, its own data, real HTTP.

    .venv/bin/python bench/lifecycle.py [--sessions N] [--turns-per-session M]
                                        [--requests R] [--concurrency C [C ...]]

1. Starts `sessionhub serve` on a free 127.0.0.1 port with a fresh SQLite file and a fresh
   JWT secret in a temporary folder, and gets a token from `sessionhub token`.
2. Generates the data through the GraphQL API (seeded, so every run writes the same text):
   N sessions of M turns each, alternating short user messages (sendMessage) and agent
   answers of a few hundred words (appendTurn), some with tool invocations carrying JSON.
3. Measures, after a warm-up, R requests per scenario and concurrency level:
   - sendMessage into existing sessions;
   - the last 50 turns of a session (session(id) { turns(last: 50) { ... } }).
4. Prints a table (p50 / p99 latency seen by the client, requests/s) and writes it as JSON
   to bench/results/lifecycle.json. The server is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

from sessionhub.storage.sqlite.driver import sqlite as sqlite3

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results" / "lifecycle.json"
CLI = [sys.executable, "-m", "sessionhub.server.cli"]

STARTUP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 60.0
MAX_ERRORS_SHOWN = 5

SEND_MESSAGE = """
mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) { session { id turnCount } turn { id seq } }
}"""

APPEND_TURN = """
mutation Append($input: AppendTurnInput!) {
  appendTurn(input: $input) { id seq }
}"""

LAST_50_TURNS = """
query Last50($id: ID!) {
  session(id: $id) {
    turns(last: 50) {
      edges { node { seq role content toolInvocations { name input output } } }
    }
  }
}"""

CHAT_APPS = "{ chatApps { id settings { maxSessionHistory } } }"


# Machine facts


def machine_facts() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                cpu = value.strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu_model": cpu,
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


# The server process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    env: dict[str, str]
    folder: Path
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


@contextmanager
def running_server(
    folder: Path, database: Path | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`sessionhub serve` on `database` (a fresh bench.db in `folder` by default), its
    secret, log and working files in `folder`; stopped on leaving."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONHUB_")}
    env.update(
        SESSIONHUB_DATABASE_URL=f"sqlite:///{database or folder / 'bench.db'}",
        SESSIONHUB_JWT_SECRET=secrets.token_urlsafe(48),
        SESSIONHUB_DEV_SECRET_FILE=str(folder / "dev-jwt-secret"),
        # warning: no access log line per request, which would be measured too.
        SESSIONHUB_LOG_LEVEL="warning",
    )
    env.update(extra_env or {})
    port = free_port()
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", env, folder, log_path)
    try:
        wait_healthy(server)
        yield server
    finally:
        server.stop()


def wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(
                f"sessionhub serve exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"/healthz did not answer within {STARTUP_TIMEOUT_S}s:\n{server.log_tail()}")


def issue_token(server: Server, user: str, entity: str) -> str:
    done = subprocess.run(
        [*CLI, "token", "--user", user, "--entity", entity, "--ttl", str(7 * 24 * 3600)],
        env=server.env,
        cwd=server.folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise SystemExit(f"sessionhub token failed ({done.returncode}): {done.stderr}")
    return done.stdout.strip()


# Data: seeded, realistic-looking text


SYLLABLES = [
    "ka",
    "ri",
    "to",
    "an",
    "el",
    "mo",
    "su",
    "ne",
    "di",
    "lo",
    "ra",
    "vi",
    "te",
    "po",
    "ma",
    "zu",
    "ce",
    "ba",
    "fi",
    "go",
    "ha",
    "ju",
    "ly",
    "qu",
    "st",
    "tr",
    "pl",
    "br",
    "ch",
    "sh",
    "th",
    "er",
    "in",
    "on",
    "at",
    "or",
    "ul",
    "ix",
    "ex",
    "ost",
    "ent",
    "ard",
    "ine",
    "ane",
    "ope",
]
TOOLS = ("search_docs", "run_sql", "http_get", "calculator", "read_file", "create_ticket")
QUESTION_STARTS = (
    "How do I",
    "Can you",
    "Why does",
    "What is the best way to",
    "Please",
    "Could you check whether",
    "Is it possible to",
)


class Vocabulary:
    """A made-up vocabulary with Zipf-like frequencies, so that a few words are common
    and most are rare, as in real text."""

    def __init__(self, seed: int, size: int = 5000) -> None:
        rng = random.Random(seed)
        words: set[str] = set()
        for _ in range(size * 20):  # bounded: stops once the vocabulary is full
            if len(words) >= size:
                break
            words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
        self.words = sorted(words)
        rng.shuffle(self.words)
        ranks = range(len(self.words))
        self.cum_weights = list(itertools.accumulate(1.0 / (rank + 1) for rank in ranks))


class TextGenerator:
    def __init__(self, vocabulary: Vocabulary, rng: random.Random) -> None:
        self.vocabulary = vocabulary
        self.rng = rng

    def words(self, count: int) -> list[str]:
        v = self.vocabulary
        return self.rng.choices(v.words, cum_weights=v.cum_weights, k=count)

    def sentence(self, low: int = 6, high: int = 18) -> str:
        words = self.words(self.rng.randint(low, high))
        words[0] = words[0].capitalize()
        return " ".join(words) + self.rng.choice(".......?!")

    def user_message(self) -> str:
        start = self.rng.choice(QUESTION_STARTS)
        return f"{start} {' '.join(self.words(self.rng.randint(3, 14)))}?"

    def agent_answer(self) -> str:
        target = self.rng.randint(150, 450)  # words
        paragraphs, written = [], 0
        for _ in range(100):  # bounded
            if written >= target:
                break
            sentences = [self.sentence() for _ in range(self.rng.randint(2, 6))]
            written += sum(len(s.split()) for s in sentences)
            paragraphs.append(" ".join(sentences))
        return "\n\n".join(paragraphs)

    def tool_invocation(self) -> dict[str, Any]:
        rows = [
            {
                "id": self.rng.randint(1, 10**6),
                "label": " ".join(self.words(3)),
                "score": round(self.rng.random(), 4),
            }
            for _ in range(self.rng.randint(1, 8))
        ]
        return {
            "name": self.rng.choice(TOOLS),
            "input": {
                "query": " ".join(self.words(self.rng.randint(2, 6))),
                "limit": self.rng.choice([5, 10, 20]),
                "filters": {"lang": self.rng.choice(["en", "de", "fr"])},
            },
            "output": {"rows": rows, "total": len(rows), "truncated": False},
            "status": "SUCCEEDED",
            "durationMs": round(self.rng.uniform(5, 900), 1),
        }


def session_script(
    vocabulary: Vocabulary, seed: int, index: int, turns: int
) -> list[tuple[str, dict[str, Any]]]:
    """The requests that write session `index`: (document, input) pairs, user first.
    Each session has its own seeded generator, so the text does not depend on the order
    in which concurrent writers get to it."""
    rng = random.Random(seed * 1_000_003 + index)
    text = TextGenerator(vocabulary, rng)
    script: list[tuple[str, dict[str, Any]]] = []
    for position in range(turns):
        if position % 2 == 0:
            script.append((SEND_MESSAGE, {"content": text.user_message()}))
            continue
        item: dict[str, Any] = {
            "role": "ASSISTANT",
            "content": text.agent_answer(),
            "usage": {
                "inputTokens": rng.randint(50, 4000),
                "outputTokens": rng.randint(100, 1200),
                "cost": round(rng.uniform(0.0005, 0.05), 5),
            },
        }
        if rng.random() < 0.3:
            item["toolInvocations"] = [text.tool_invocation() for _ in range(rng.randint(1, 3))]
        script.append((APPEND_TURN, item))
    return script


# HTTP


class GraphQLFailure(Exception):
    pass


async def graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    if response.status_code != 200:
        raise GraphQLFailure(f"HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if body.get("errors"):
        raise GraphQLFailure(json.dumps(body["errors"])[:300])
    return body["data"]


def async_client(server: Server, token: str, concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


async def pick_chat_apps(client: httpx.AsyncClient, turns_needed: int) -> list[str]:
    apps = (await graphql(client, CHAT_APPS, {}))["chatApps"]
    fitting = [a["id"] for a in apps if a["settings"]["maxSessionHistory"] >= turns_needed]
    if not fitting:
        raise SystemExit(
            f"No chat app keeps {turns_needed} turns per session; lower --turns-per-session "
            "or --requests."
        )
    return fitting


async def generate(
    server: Server, token: str, args: argparse.Namespace, turns_needed: int
) -> tuple[list[str], dict[str, Any]]:
    started = time.perf_counter()
    writers = 8
    async with async_client(server, token, writers) as client:
        apps = await pick_chat_apps(client, turns_needed)
        vocabulary = Vocabulary(args.seed)
        session_ids: list[str | None] = [None] * args.sessions
        next_index = itertools.count()
        turns_written = 0
        sessions_done = 0
        progress_every = max(1, args.sessions // 10)

        async def writer() -> None:
            nonlocal turns_written, sessions_done
            for _ in range(args.sessions):  # bounded: a writer takes at most every session
                index = next(next_index)
                if index >= args.sessions:
                    return
                session_id: str | None = None
                script = session_script(vocabulary, args.seed, index, args.turns_per_session)
                for document, item in script:
                    if session_id is None:
                        item = {**item, "chatAppId": apps[index % len(apps)]}
                    else:
                        item = {**item, "sessionId": session_id}
                    data = await graphql(client, document, {"input": item})
                    if session_id is None:
                        session_id = data["sendMessage"]["session"]["id"]
                    turns_written += 1
                session_ids[index] = session_id
                sessions_done += 1
                if sessions_done % progress_every == 0:
                    print(f"  generated {sessions_done}/{args.sessions} sessions", flush=True)

        await asyncio.gather(*(writer() for _ in range(writers)))
    seconds = time.perf_counter() - started
    ids = [s for s in session_ids if s is not None]
    assert len(ids) == args.sessions
    return ids, {
        "sessions": args.sessions,
        "turns": turns_written,
        "chat_apps": apps,
        "seconds": round(seconds, 2),
        "writes_per_second": round(turns_written / seconds, 1),
    }


# Measurement


@dataclass
class Result:
    scenario: str
    concurrency: int
    requests: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    requests_per_second: float
    errors: int
    error_samples: list[str] = field(default_factory=list)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


RequestFactory = Callable[[int], tuple[str, dict[str, Any]]]


async def run_load(
    client: httpx.AsyncClient, make_request: RequestFactory, total: int, concurrency: int
) -> tuple[list[float], float, list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    counter = itertools.count()

    async def worker() -> None:
        for _ in range(total):  # bounded: at most `total` requests per worker
            i = next(counter)
            if i >= total:
                return
            query, variables = make_request(i)
            start = time.perf_counter_ns()
            try:
                await graphql(client, query, variables)
            except (GraphQLFailure, httpx.HTTPError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append((time.perf_counter_ns() - start) / 1e6)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


async def measure(
    server: Server,
    token: str,
    name: str,
    make_request: RequestFactory,
    requests: int,
    warmup: int,
    concurrency: int,
) -> Result:
    async with async_client(server, token, concurrency) as client:
        if warmup:
            await run_load(client, make_request, warmup, concurrency)
        latencies, seconds, errors = await run_load(client, make_request, requests, concurrency)
    latencies.sort()
    return Result(
        scenario=name,
        concurrency=concurrency,
        requests=requests,
        p50_ms=round(percentile(latencies, 50), 3),
        p99_ms=round(percentile(latencies, 99), 3),
        mean_ms=round(statistics.fmean(latencies), 3) if latencies else float("nan"),
        max_ms=round(latencies[-1], 3) if latencies else float("nan"),
        requests_per_second=round(len(latencies) / seconds, 1) if seconds > 0 else 0.0,
        errors=len(errors),
        error_samples=errors[:MAX_ERRORS_SHOWN],
    )


def send_message_requests(session_ids: list[str], seed: int) -> RequestFactory:
    text = TextGenerator(Vocabulary(seed + 1, size=2000), random.Random(seed + 2))

    def make(i: int) -> tuple[str, dict[str, Any]]:
        # Round robin over the sessions, so that every session grows by the same amount.
        session_id = session_ids[i % len(session_ids)]
        return SEND_MESSAGE, {"input": {"sessionId": session_id, "content": text.user_message()}}

    return make


def last_50_requests(session_ids: list[str], seed: int) -> RequestFactory:
    rng = random.Random(seed + 3)

    def make(_: int) -> tuple[str, dict[str, Any]]:
        return LAST_50_TURNS, {"id": rng.choice(session_ids)}

    return make


# Report


def print_table(results: list[Result]) -> None:
    header = ("scenario", "concurrency", "requests", "p50 ms", "p99 ms", "requests/s", "errors")
    rows = [
        (
            r.scenario,
            str(r.concurrency),
            str(r.requests),
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.requests_per_second:.1f}",
            str(r.errors),
        )
        for r in results
    ]
    print_rows(header, rows, results)


def print_rows(
    header: tuple[str, ...],
    rows: list[tuple[str, ...]],
    results: Sequence[Result],
    left: tuple[int, ...] = (0,),
) -> None:
    """An aligned table (columns right-aligned but those in `left`) under a rule, then the
    sample errors of each result."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def join(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(join(header))
    print("-" * len(join(header)))
    for row in rows:
        print(join(row))
    for r in results:
        for sample in r.error_samples:
            print(f"  error in {r.scenario} c={r.concurrency}: {sample}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=200, help="sessions to generate (200)")
    parser.add_argument(
        "--turns-per-session", type=int, default=60, help="turns per generated session (60)"
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="measured requests per scenario (2000)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 8],
        help="concurrency levels, each measured in turn (1 8)",
    )
    parser.add_argument(
        "--warmup", type=int, default=200, help="unmeasured requests before each run (200)"
    )
    parser.add_argument("--seed", type=int, default=20261125, help="random seed")
    parser.add_argument(
        "--output", type=Path, default=RESULTS_FILE, help=f"JSON results ({RESULTS_FILE})"
    )
    args = parser.parse_args(argv)
    for name in ("sessions", "turns_per_session", "requests"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or any(c < 1 for c in args.concurrency):
        parser.error("--warmup must be >= 0 and every --concurrency >= 1")
    return args


async def benchmark(server: Server, token: str, args: argparse.Namespace) -> dict[str, Any]:
    sends = (args.requests + args.warmup) * len(args.concurrency)
    turns_needed = args.turns_per_session + -(-sends // args.sessions)
    print(f"Generating {args.sessions} sessions x {args.turns_per_session} turns ...", flush=True)
    session_ids, dataset = await generate(server, token, args, turns_needed)
    print(
        f"  {dataset['turns']} turns in {dataset['seconds']} s "
        f"({dataset['writes_per_second']} writes/s, concurrency 8)\n",
        flush=True,
    )
    results: list[Result] = []
    scenarios = [
        ("sendMessage", send_message_requests(session_ids, args.seed)),
        ("session.turns(last: 50)", last_50_requests(session_ids, args.seed)),
    ]
    for name, factory in scenarios:
        for concurrency in args.concurrency:
            print(f"Measuring {name} at concurrency {concurrency} ...", flush=True)
            results.append(
                await measure(server, token, name, factory, args.requests, args.warmup, concurrency)
            )
    return {"dataset": dataset, "results": results}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine_facts()
    print(f"CPU:    {facts['cpu_model']}")
    print(f"nproc:  {facts['nproc']}")
    print(f"Python: {facts['python']} ({facts['python_implementation']}), SQLite {facts['sqlite']}")
    print(f"OS:     {facts['platform']}\n", flush=True)

    with (
        tempfile.TemporaryDirectory(prefix="sessionhub-bench-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        print(f"Server: {server.base_url} (pid {server.process.pid}, db {tmp}/bench.db)")
        token = issue_token(server, "bench-user", "bench-entity")
        outcome = asyncio.run(benchmark(server, token, args))

    results: list[Result] = outcome["results"]
    print()
    print_table(results)
    report = {
        "benchmark": "lifecycle",
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": facts,
        "parameters": {
            "sessions": args.sessions,
            "turns_per_session": args.turns_per_session,
            "requests": args.requests,
            "concurrency": args.concurrency,
            "warmup": args.warmup,
            "seed": args.seed,
        },
        "dataset": outcome["dataset"],
        "results": [asdict(r) for r in results],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nWrote {args.output}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
