"""Existence timing: does an id of another entity answer slower than an id that does not exist?

    .venv/bin/python bench/existence_timing.py [--rounds N]

1. Starts `sessionhub serve` (measured_server.py: a temporary folder, a fresh SQLite
   file and JWT secret) with a chat app that shares inside its entity only, and a generous
   link-open rate (the limit is not what is measured here).
2. alice@acme writes a session with a few turns and shares it by a LINK; bob@globex is the
   prober: the link is acme's only, so it does not open for him either.
3. Sends, one at a time, N rounds of each probe pair in a shuffled order per round:
   `session(id)`, `appendTurn` and `sendMessage` with the foreign session's id and with a
   missing id of the same shape, and `sessionByShareLink` with the foreign link's token and
   with an unknown token of the same length. Every probe answers null or NOT_FOUND.
4. Prints, per probe, the median and quartiles of the server's own time (its
   `Server-Timing: app;dur=` header) and of the client's round trip, and the difference of
   the medians (foreign - missing).
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import _paths  # noqa: F401  (tests.support importable)
import httpx2 as httpx
from lifecycle import SEND_MESSAGE
from measured_server import running_server, token_for

from tests.support import probing

SHARE = """mutation($id: ID!) { shareSession(input: {sessionId: $id, granteeKind: LINK}) { linkToken } }"""


def post(
    client: httpx.Client, token: str, query: str, variables: dict
) -> tuple[dict, float, float]:
    started = time.perf_counter()
    response = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    server_ms = float(response.headers["server-timing"].split("dur=")[1])
    return response.json(), server_ms, elapsed_ms


def quartiles(values: list[float]) -> str:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return f"{q2:6.3f} ({q1:.3f}-{q3:.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sessionhub-existence-") as tmp:
        folder = Path(tmp)
        (folder / "chat_apps.toml").write_text(probing.CHAT_APPS)
        env = {
            "SESSIONHUB_CHAT_APPS_FILE": str(folder / "chat_apps.toml"),
            "SESSIONHUB_LINK_OPEN_RATE": "1000000/minute",
        }
        with (
            running_server(folder, extra_env=env) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as client,
        ):
            alice = token_for(server, "alice", "acme")
            bob = token_for(server, "bob", "globex")
            body, _, _ = post(
                client,
                alice,
                SEND_MESSAGE,
                {"input": {"chatAppId": "team", "content": "Q3 numbers"}},
            )
            foreign = body["data"]["sendMessage"]["session"]["id"]
            for i in range(4):
                post(client, alice, probing.SEND_INTO, {"id": foreign})
                del i
            link = post(client, alice, SHARE, {"id": foreign})[0]["data"]["shareSession"][
                "linkToken"
            ]
            probes = {
                "session(id)": (probing.READ, {"id": foreign}, lambda: {"id": str(uuid.uuid4())}),
                "appendTurn": (probing.APPEND, {"id": foreign}, lambda: {"id": str(uuid.uuid4())}),
                "sendMessage": (
                    probing.SEND_INTO,
                    {"id": foreign},
                    lambda: {"id": str(uuid.uuid4())},
                ),
                "sessionByShareLink": (
                    probing.BY_LINK,
                    {"token": link},
                    lambda: {"token": secrets.token_urlsafe(32)},
                ),
            }
            times: dict[tuple[str, str], tuple[list[float], list[float]]] = {
                (name, kind): ([], []) for name in probes for kind in ("foreign", "missing")
            }
            order = [(name, kind) for name in probes for kind in ("foreign", "missing")]
            rng = random.Random(20)
            for round_ in range(args.rounds + 50):
                rng.shuffle(order)
                for name, kind in order:
                    query, foreign_vars, missing_vars = probes[name]
                    variables = foreign_vars if kind == "foreign" else missing_vars()
                    body, server_ms, client_ms = post(client, bob, query, variables)
                    assert probing.answers_nothing_there(body), (name, kind, body)
                    if round_ >= 50:  # the first rounds warm up
                        times[name, kind][0].append(server_ms)
                        times[name, kind][1].append(client_ms)
    print(f"{args.rounds} rounds; median (quartiles) in ms")
    print(f"{'probe':20} {'kind':8} {'server':24} {'client':24}")
    for name in probes:
        for kind in ("foreign", "missing"):
            server_times, client_times = times[name, kind]
            print(f"{name:20} {kind:8} {quartiles(server_times):24} {quartiles(client_times):24}")
        gap = statistics.median(times[name, "foreign"][0]) - statistics.median(
            times[name, "missing"][0]
        )
        print(f"{'':20} {'gap':8} {gap:+.3f} (server medians, foreign - missing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
