"""Export benchmark: how long a large session's export takes, and what it does to a small
query that arrives meanwhile, on a real `sessionhub serve` process over real HTTP.

    .venv/bin/python bench/export.py [--turns N] [--answer-chars C] [--formats PDF DOCX ...]
                                     [--env SESSIONHUB_X=value ...]

1. Starts `sessionhub serve` on a free 127.0.0.1 port with a fresh SQLite file
   (measured_server.py), with the `--env` settings added (e.g. larger export budgets).
2. Writes one session through the API: N turns alternating short user messages and agent
   answers of about C characters of seeded prose (the defaults make ~6 MB of text).
3. Measures the small query alone (`session(id) { id title turnCount }`, one after another
   on its own connection), then, for each format, one `exportSessions` of that session on
   another connection while the small query keeps being sent every `--probe-every` ms.
4. Prints, per format: the export's wall time, its outcome (bytes or error code), and the
   small queries' count, p50 and maximum latency during it; writes the same as JSON to
   bench/results/export.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import lifecycle
import options
from machine import machine_facts
from measured_server import Server, running_server, token_for
from report import report_header, write_report

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results" / "export.json"
EXPORT_TIMEOUT_S = 600.0

SMALL_QUERY = "query Small($id: ID!) { session(id: $id) { id title turnCount } }"
EXPORT = """mutation Export($ids: [ID!]!, $format: ExportFormat!) {
  exportSessions(ids: $ids, format: $format) { fileName contentBase64 results { status } }
}"""


@dataclass
class Outcome:
    format: str
    export_seconds: float
    export_result: str
    probes: int
    probe_p50_ms: float
    probe_max_ms: float
    slowest: list[tuple[float, float]]
    """The five slowest small queries: (seconds into the export, milliseconds)."""


async def write_session(
    client: httpx.AsyncClient, turns: int, answer_chars: int, seed: int
) -> tuple[str, int]:
    text = lifecycle.TextGenerator(lifecycle.Vocabulary(seed), random.Random(seed))
    first = await lifecycle.graphql(
        client,
        lifecycle.SEND_MESSAGE,
        {"input": {"chatAppId": "knowledge", "content": text.user_message()}},
    )
    session_id = first["sendMessage"]["session"]["id"]
    written = 0
    for seq in range(2, turns + 1):
        if seq % 2:
            content = text.user_message()
            await lifecycle.graphql(
                client,
                lifecycle.SEND_MESSAGE,
                {"input": {"sessionId": session_id, "content": content}},
            )
        else:
            paragraphs: list[str] = []
            while sum(map(len, paragraphs)) < answer_chars:
                paragraphs.append(text.agent_answer())
            content = "\n\n".join(paragraphs)[:answer_chars]
            await lifecycle.graphql(
                client,
                lifecycle.APPEND_TURN,
                {"input": {"sessionId": session_id, "role": "ASSISTANT", "content": content}},
            )
        written += len(content)
    return session_id, written


async def probe_once(client: httpx.AsyncClient, session_id: str) -> float:
    started = time.perf_counter()
    response = await client.post(
        "/graphql",
        json={"query": SMALL_QUERY, "variables": {"id": session_id}},
        timeout=EXPORT_TIMEOUT_S,
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    return (time.perf_counter() - started) * 1000


async def export_once(client: httpx.AsyncClient, session_id: str, fmt: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = await client.post(
        "/graphql",
        json={"query": EXPORT, "variables": {"ids": [session_id], "format": fmt}},
        timeout=EXPORT_TIMEOUT_S,
    )
    seconds = time.perf_counter() - started
    body = response.json()
    if body.get("errors"):
        error = body["errors"][0]
        return seconds, f"{error.get('extensions', {}).get('code')}: {error['message'][:120]}"
    content = body["data"]["exportSessions"]["contentBase64"]
    return seconds, f"{len(content) * 3 // 4:,} bytes"


async def measure(
    server: Server, token: str, session_id: str, fmt: str, probe_every: float
) -> Outcome:
    async with (
        lifecycle.async_client(server, token, 1) as exporter,
        lifecycle.async_client(server, token, 1) as prober,
    ):
        await probe_once(prober, session_id)  # the connection, opened before the export
        started = time.perf_counter()
        export = asyncio.create_task(export_once(exporter, session_id, fmt))
        latencies: list[float] = []
        offsets: list[float] = []
        while not export.done():
            offsets.append(time.perf_counter() - started)
            latencies.append(await probe_once(prober, session_id))
            await asyncio.sleep(probe_every)
        seconds, result = await export
    slowest = sorted(zip(offsets, latencies, strict=True), key=lambda p: -p[1])[:5]
    return Outcome(
        fmt,
        round(seconds, 2),
        result,
        len(latencies),
        round(statistics.median(latencies), 1) if latencies else 0.0,
        round(max(latencies), 1) if latencies else 0.0,
        [(round(at, 2), round(ms, 1)) for at, ms in slowest],
    )


async def benchmark(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    token = token_for(server, "bench-user", "bench-entity")
    async with lifecycle.async_client(server, token, 1) as client:
        print(f"Writing {args.turns} turns ...", flush=True)
        session_id, chars = await write_session(client, args.turns, args.answer_chars, args.seed)
        print(f"Session {session_id}: {chars:,} characters of content", flush=True)
        alone = [await probe_once(client, session_id) for _ in range(50)]
    baseline = {
        "probes": len(alone),
        "p50_ms": round(statistics.median(alone), 1),
        "max_ms": round(max(alone), 1),
    }
    outcomes = []
    for fmt in args.formats:
        print(f"Exporting as {fmt} ...", flush=True)
        outcomes.append(await measure(server, token, session_id, fmt, args.probe_every / 1000))
    return {"session_chars": chars, "baseline": baseline, "outcomes": outcomes}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=120, help="turns in the session (120)")
    parser.add_argument(
        "--answer-chars", type=int, default=100_000, help="characters per agent answer (100000)"
    )
    parser.add_argument(
        "--formats", nargs="+", default=["PDF", "DOCX", "MARKDOWN", "JSON"], help="in order"
    )
    parser.add_argument(
        "--probe-every", type=float, default=50.0, help="ms between small queries (50)"
    )
    options.add_server_settings(parser, "--env")
    options.add_seed(parser)
    options.add_output(parser, RESULTS_FILE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine_facts()
    print(f"CPU: {facts['cpu_model']}, nproc {facts['nproc']}, Python {facts['python']}")
    extra_env = dict(args.server_env)
    with (
        tempfile.TemporaryDirectory(prefix="sessionhub-bench-") as tmp,
        running_server(Path(tmp), extra_env=extra_env) as server,
    ):
        outcome = asyncio.run(benchmark(server, args))
    baseline = outcome["baseline"]
    print(
        f"\nSmall query alone: p50 {baseline['p50_ms']} ms, max {baseline['max_ms']} ms "
        f"({baseline['probes']} queries)\n"
    )
    header = f"{'format':<9} {'export s':>9}  {'queries':>7} {'p50 ms':>7} {'max ms':>8}  result"
    print(header)
    for o in outcome["outcomes"]:
        print(
            f"{o.format:<9} {o.export_seconds:>9.2f}  {o.probes:>7} {o.probe_p50_ms:>7.1f} "
            f"{o.probe_max_ms:>8.1f}  {o.export_result}"
        )
        print(f"          slowest (s into the export, ms): {o.slowest}")
    report = {
        **report_header("export", facts),
        "parameters": {
            "turns": args.turns,
            "answer_chars": args.answer_chars,
            "probe_every_ms": args.probe_every,
            "env": extra_env,
            "seed": args.seed,
        },
        "session_chars": outcome["session_chars"],
        "baseline": baseline,
        "outcomes": [asdict(o) for o in outcome["outcomes"]],
    }
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
