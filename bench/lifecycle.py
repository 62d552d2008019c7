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
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import options
from machine import machine_facts, print_machine
from measured_server import Server, running_server, token_for
from report import latency_fields, print_aligned, report_header, write_report

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results" / "lifecycle.json"

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

    def agent_turn(self, tool_share: float = 0.3) -> dict[str, Any]:
        """The input of an agent's appendTurn: an answer, its token usage and, in
        `tool_share` of the turns, one to three tool invocations (in all of them at 1.0,
        which draws nothing to decide)."""
        rng = self.rng
        item: dict[str, Any] = {
            "role": "ASSISTANT",
            "content": self.agent_answer(),
            "usage": {
                "inputTokens": rng.randint(50, 4000),
                "outputTokens": rng.randint(100, 1200),
                "cost": round(rng.uniform(0.0005, 0.05), 5),
            },
        }
        if tool_share >= 1.0 or rng.random() < tool_share:
            item["toolInvocations"] = [self.tool_invocation() for _ in range(rng.randint(1, 3))]
        return item


def session_script(
    vocabulary: Vocabulary, seed: int, index: int, turns: int, tool_share: float = 0.3
) -> list[tuple[str, dict[str, Any]]]:
    """The requests that write session `index`: (document, input) pairs, user first, the
    agent's turns with tools in `tool_share` of them. Each session has its own seeded
    generator, so the text does not depend on the order in which concurrent writers get
    to it."""
    text = TextGenerator(vocabulary, random.Random(seed * 1_000_003 + index))
    script: list[tuple[str, dict[str, Any]]] = []
    for position in range(turns):
        if position % 2 == 0:
            script.append((SEND_MESSAGE, {"content": text.user_message()}))
        else:
            script.append((APPEND_TURN, text.agent_turn(tool_share)))
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


async def write_session(
    client: httpx.AsyncClient, script: list[tuple[str, dict[str, Any]]], chat_app_id: str
) -> str:
    """Sends a session's script, its first message into `chat_app_id`; returns its id."""
    session_id: str | None = None
    for document, item in script:
        target = {"chatAppId": chat_app_id} if session_id is None else {"sessionId": session_id}
        data = await graphql(client, document, {"input": {**item, **target}})
        if session_id is None:
            session_id = data["sendMessage"]["session"]["id"]
    assert session_id is not None
    return session_id


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
                script = session_script(vocabulary, args.seed, index, args.turns_per_session)
                session_ids[index] = await write_session(client, script, apps[index % len(apps)])
                turns_written += len(script)
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
        **latency_fields(latencies),
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
    print_aligned(header, rows, left)
    for r in results:
        for sample in r.error_samples:
            print(f"  error in {r.scenario} c={r.concurrency}: {sample}")


def add_session_options(
    parser: argparse.ArgumentParser, sessions: int, turns_per_session: int
) -> None:
    """How many sessions `session_script` writes, how long, from which seed."""
    parser.add_argument(
        "--sessions", type=int, default=sessions, help=f"sessions to generate [{sessions}]"
    )
    parser.add_argument(
        "--turns-per-session",
        type=int,
        default=turns_per_session,
        help=f"turns per generated session [{turns_per_session}]",
    )
    options.add_seed(parser)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_session_options(parser, sessions=200, turns_per_session=60)
    options.add_requests(parser, "scenario")
    options.add_concurrency_levels(parser)
    options.add_output(parser, RESULTS_FILE)
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
    print_machine(facts)

    with (
        tempfile.TemporaryDirectory(prefix="sessionhub-bench-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        print(f"Server: {server.base_url} (pid {server.process.pid}, db {tmp}/bench.db)")
        token = token_for(server, "bench-user", "bench-entity")
        outcome = asyncio.run(benchmark(server, token, args))

    results: list[Result] = outcome["results"]
    print()
    print_table(results)
    report = {
        **report_header("lifecycle", facts),
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
    write_report(args.output, report)
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
