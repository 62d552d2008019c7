"""Listing the last 50 turns of a session: the store's `list_turns` against the query it
replaced, side by side in one run on one generated SQLite store.

    .venv/bin/python bench/turn_listing.py [--turns 300000] [--per-session 60]
                                           [--samples 3000] [--seed 7]

The old query learnt the session's entity once per turn row, through a correlated
subquery on `sessions` (`TURN_SELECT` before the fix); `list_turns` now reads it once per
call. Both run through the same reader connection of a real `SqliteStore`, alternately
on the same random sessions, and decode rows with the same `codec.turn_from_row`.
Prints p50 / p99 in microseconds and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine import machine_facts
from report import percentile
from store_file import PRINTER_WORDS, add_size_options, create_schema

from sessionhub.domain.models import NewTurn, Session, SessionStatus, TitleSource, Turn, TurnRole
from sessionhub.storage.sqlite import codec
from sessionhub.storage.sqlite.store import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OLD_TURN_SELECT = (
    f"SELECT {codec.TURN_COLUMNS},"
    " (SELECT s.entity_id FROM sessions s WHERE s.id = turns.session_id) FROM turns"
)
WORDS = (*PRINTER_WORDS, "and", "try", "again")


def _old_list(conn: sqlite3.Connection, session_id: str, limit: int) -> list[Turn]:
    rows = conn.execute(
        f"{OLD_TURN_SELECT} WHERE session_id = ? ORDER BY seq DESC LIMIT ?", (session_id, limit)
    ).fetchall()
    return [codec.turn_from_row(r[:-1], r[-1]) for r in rows]


def generate(path: Path, turns: int, per_session: int, seed: int) -> list[str]:
    create_schema(path)
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    ids = []
    for n in range(turns // per_session):
        at = T0 + timedelta(minutes=n)
        session = Session(
            id=f"s{n:08d}",
            entity_id=f"entity{n % 7}",
            chat_app_id="support",
            owner_id=f"user{n % 500}",
            title="A session",
            title_source=TitleSource.MANUAL,
            created_at=at,
            updated_at=at,
            last_activity_at=at,
            turn_count=per_session,
            participants=[f"user{n % 500}"],
            status=SessionStatus.ACTIVE,
        )
        conn.execute(
            f"INSERT INTO sessions ({codec.SESSION_COLUMNS}) VALUES ({', '.join('?' * len(codec.SESSION_COLUMNS.split(',')))})",
            codec.session_row(session),
        )
        rows = []
        for seq in range(1, per_session + 1):
            new = NewTurn(
                id=f"{session.id}-{seq}",
                session_id=session.id,
                role=TurnRole.USER if seq % 2 else TurnRole.ASSISTANT,
                author_id=session.owner_id if seq % 2 else "agent",
                content=" ".join(rng.choices(WORDS, k=40)),
                created_at=at + timedelta(seconds=seq),
                author_entity_id=session.entity_id,
            )
            rows.append(codec.turn_row(Turn.numbered(new, seq, session.entity_id)))
        conn.executemany(
            f"INSERT INTO turns ({codec.TURN_COLUMNS}) VALUES ({', '.join('?' * 18)})", rows
        )
        ids.append(session.id)
    conn.execute("COMMIT")
    conn.close()
    return ids


async def measure(path: Path, ids: list[str], samples: int, seed: int) -> dict[str, list[float]]:
    store = SqliteStore(str(path), readers=1)
    await store.open()
    rng = random.Random(seed)
    timings: dict[str, list[float]] = {"before (subquery per row)": [], "after (list_turns)": []}
    try:
        for i in range(samples + 200):
            session_id = rng.choice(ids)
            for name in list(timings) if i % 2 else list(reversed(timings)):
                started = time.perf_counter()
                if name.startswith("before"):
                    turns = await store.connections.read(_old_list, session_id, 50)
                else:
                    turns = await store.list_turns(session_id, limit=50, newest_first=True)
                elapsed = time.perf_counter() - started
                assert turns and turns[0].entity_id == turns[0].author_entity_id
                if i >= 200:  # the first 200 warm the caches
                    timings[name].append(elapsed * 1e6)
    finally:
        await store.close()
    return timings


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_options(parser, turns=300_000, per_session=60)
    parser.add_argument("--samples", type=int, default=3000)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "turns.db"
        started = time.perf_counter()
        ids = generate(path, args.turns, args.per_session, args.seed)
        print(
            f"{len(ids) * args.per_session:,} turns in {len(ids):,} sessions,"
            f" generated in {time.perf_counter() - started:.1f} s"
        )
        timings = asyncio.run(measure(path, ids, args.samples, args.seed))
    print(f"machine: {machine_facts()}")
    print(f"{'last 50 turns':<28} {'p50 µs':>8} {'p99 µs':>8} {'mean µs':>8}")
    for name, values in timings.items():
        values.sort()
        print(
            f"{name:<28} {percentile(values, 50):>8.0f} {percentile(values, 99):>8.0f}"
            f" {statistics.fmean(values):>8.0f}"
        )


if __name__ == "__main__":
    sys.exit(main())
