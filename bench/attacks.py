"""What the request-cost attacks of issue 20 cost a running server, and what they cost a
bystander: the time to answer each attack, and the latency of a small query sent again and
again on another connection meanwhile.

    .venv/bin/python bench/attacks.py [--repeat N]

Starts `sessionhub serve` (measured_server.py: a temporary folder, a fresh SQLite file
and JWT secret), then for each attack: the bystander runs alone for a second (its baseline),
then the attack is sent N times, one after another, while the bystander keeps asking.
Prints, per attack, the attack's answer time (p50 / max) and the bystander's p50 / p99 /
max during it, beside its baseline; the JSON goes to bench/results/attacks.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _paths  # noqa: F401  (tests.support importable)
import httpx2 as httpx
from machine import machine_facts
from measured_server import running_server, token_for

from tests.support.attacks import SMALL, Bystander, fragment_chain

HERE = Path(__file__).resolve().parent
RESULTS_FILE = HERE / "results" / "attacks.json"
MIB = 1024 * 1024
BYSTANDER_PAUSE_S = 0.01

ATTACKS: dict[str, Callable[[int], dict]] = {
    "fragment chain, 24 levels": lambda n: {"query": fragment_chain(24)},
    "fragment chain, 40 levels": lambda n: {"query": fragment_chain(40)},
    "1,600 same-name fields": lambda n: {"query": "{" + " me { userId }" * 1_600 + "}"},
    "40 aliases of 100 x 100 pages": lambda n: {
        "query": "{ "
        + " ".join(
            f"a{i}: sessions(first: 100) {{ edges {{ node {{ turns(last: 100) "
            f"{{ nodes {{ id }} }} }} }} }}"
            for i in range(40)
        )
        + " }"
    },
    "3.9 MB document (distinct)": lambda n: {
        "query": f"# {n}\n#" + "x" * int(3.9 * MIB) + "\n" + SMALL
    },
    "dense 16 KB document (distinct)": lambda n: {
        "query": f"# {n}\n{{ " + " ".join(f"x{i}" for i in range(2_500)) + " }"
    },
    "40 aliases of __schema": lambda n: {
        "query": "{ " + " ".join(f"a{i}: __schema {{ types {{ name }} }}" for i in range(40)) + " }"
    },
}


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="each attack this many times (5)")
    args = parser.parse_args()
    facts = machine_facts()
    print(
        f"CPU: {facts['cpu_model']} (nproc {facts['nproc']}), Python {facts['python']}", flush=True
    )
    with (
        tempfile.TemporaryDirectory() as folder,
        running_server(Path(folder)) as server,
    ):
        url = f"{server.base_url}/graphql"
        token = token_for(server, "mallory", "acme")
        headers = {"Authorization": f"Bearer {token}"}
        rows = []
        with httpx.Client(timeout=300.0) as client:
            for name, make in ATTACKS.items():
                with Bystander(url, token, BYSTANDER_PAUSE_S) as alone:
                    time.sleep(1.0)
                with Bystander(url, token, BYSTANDER_PAUSE_S) as bystander:
                    bystander.wait_for(1)
                    answers = []
                    for n in range(args.repeat):
                        started = time.perf_counter()
                        response = client.post(url, json=make(n), headers=headers)
                        answers.append(time.perf_counter() - started)
                        codes = {
                            e.get("extensions", {}).get("code")
                            for e in response.json().get("errors", [])
                        }
                    bystander.wait_for(bystander.answers + 1)
                row = {
                    "attack": name,
                    "answer_p50_ms": 1000 * statistics.median(answers),
                    "answer_max_ms": 1000 * max(answers),
                    "refused_with": sorted(c for c in codes if c),
                    "bystander_alone_p50_ms": _ms(alone.latencies, 0.5),
                    "bystander_p50_ms": _ms(bystander.latencies, 0.5),
                    "bystander_p99_ms": _ms(bystander.latencies, 0.99),
                    "bystander_max_ms": _ms(bystander.latencies, 1.0),
                    "bystander_queries": len(bystander.latencies),
                }
                rows.append(row)
                print(
                    f"{name:34s} answer p50 {row['answer_p50_ms']:8.1f} max "
                    f"{row['answer_max_ms']:8.1f} ms  {','.join(row['refused_with']) or 'data':15s}"
                    f" bystander p50 {row['bystander_p50_ms']:6.1f} (alone "
                    f"{row['bystander_alone_p50_ms']:5.1f}) p99 {row['bystander_p99_ms']:6.1f} "
                    f"max {row['bystander_max_ms']:7.1f} ms",
                    flush=True,
                )
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(
        json.dumps({"machine": facts, "repeat": args.repeat, "attacks": rows}, indent=2)
    )
    print(f"Wrote {RESULTS_FILE}")


if __name__ == "__main__":
    main()
