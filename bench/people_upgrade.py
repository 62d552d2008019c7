"""How long SQLite's migration 0015 (people settled from shares) takes on a large store.

    .venv/bin/python bench/people_upgrade.py [--turns 1000000] [--per-session 10]
                                             [--external 0.05] [--seed 7]

Generates a store at schema version 14 in the old form (every person a bare user id):
sessions of `--per-session` turns across 7 entities of 500 users, a share `--external` of
them shared with INTERACT to a user of another entity who read the session (an audit
event naming their entity), wrote two turns and rated one (one in five of those shares
revoked since, one in ten also shared to a colleague with the same id: ambiguous), and two
audit events a session besides: the owner's tagging and a read by a user of the entity.
Then runs the migration exactly as the store does at `open` (`migrate.apply`, one transaction)
and prints its time and what it rewrote, with the machine.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import sqlean
from machine import machine_facts
from store_file import PRINTER_WORDS, add_size_options, create_schema

from sessionhub.storage.sqlite import migrate as schema

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENTITIES = [f"entity{i}" for i in range(7)]
USERS = 500


def us(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def generate(path: Path, turns: int, per_session: int, external: float, seed: int) -> int:
    create_schema(path)
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    shared = 0
    for n in range(turns // per_session):
        entity = ENTITIES[n % len(ENTITIES)]
        owner = f"user{rng.randrange(USERS)}"
        start = T0 + timedelta(minutes=n)
        session_id = f"s{n:08d}"
        people = [owner, "agent"]
        guest = None
        if rng.random() < external:
            shared += 1
            guest_entity = rng.choice([e for e in ENTITIES if e != entity])
            guest = f"user{rng.randrange(USERS)}"
            revoked = us(start + timedelta(days=1)) if rng.random() < 0.2 else None
            conn.execute(
                "INSERT INTO shares (id, session_id, entity_id, grantee_kind, grantee_entity_id,"
                " grantee_user_id, mode, created_by, created_at, revoked_at)"
                " VALUES (?, ?, ?, 'EXTERNAL', ?, ?, 'INTERACT', ?, ?, ?)",
                (f"x{n}", session_id, entity, guest_entity, guest, owner, us(start), revoked),
            )
            if rng.random() < 0.1:
                conn.execute(
                    "INSERT INTO shares (id, session_id, entity_id, grantee_kind,"
                    " grantee_entity_id, grantee_user_id, mode, created_by, created_at)"
                    " VALUES (?, ?, ?, 'USER', ?, ?, 'INTERACT', ?, ?)",
                    (f"u{n}", session_id, entity, entity, guest, owner, us(start)),
                )
            if guest != owner:
                people.append(guest)
            conn.execute(
                "INSERT INTO audit (id, entity_id, actor_id, action, target, at, details)"
                " VALUES (?, ?, ?, 'session.read', ?, ?, ?)",
                (
                    f"g{n}",
                    entity,
                    guest,
                    f"session:{session_id}",
                    us(start) + 1,
                    orjson.dumps({"access": "INTERACT", "actorEntityId": guest_entity}).decode(),
                ),
            )
        conn.execute(
            "INSERT INTO sessions (id, entity_id, chat_app_id, owner_id, title, title_source,"
            " created_at, updated_at, last_activity_at, turn_count, participants, status)"
            " VALUES (?, ?, 'support', ?, 'A session', 'MANUAL', ?, ?, ?, ?, ?, 'ACTIVE')",
            (
                session_id,
                entity,
                owner,
                us(start),
                us(start),
                us(start),
                per_session,
                orjson.dumps(people).decode(),
            ),
        )
        rows = []
        for seq in range(1, per_session + 1):
            at = us(start + timedelta(seconds=seq))
            if guest is not None and seq in (3, 5):
                author, role = guest, "USER"
            else:
                author, role = (owner, "USER") if seq % 2 else ("agent", "ASSISTANT")
            feedback = None
            if guest is not None and seq == 2:
                feedback = orjson.dumps(
                    [{"user_id": guest, "kind": "THUMBS_UP", "comment": None, "at": at + 1}]
                ).decode()
            content = " ".join(rng.choices(PRINTER_WORDS, k=30))
            rows.append(
                (f"{session_id}-{seq}", session_id, seq, role, author, content, feedback, at)
            )
        conn.executemany(
            "INSERT INTO turns (id, session_id, seq, role, author_id, content, feedback,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany(
            "INSERT INTO audit (id, entity_id, actor_id, action, target, at, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f"a{n}",
                    entity,
                    owner,
                    "session.tagged",
                    f"session:{session_id}",
                    us(start),
                    "{}",
                ),
                (
                    f"r{n}",
                    entity,
                    f"user{rng.randrange(USERS)}",
                    "session.read",
                    f"session:{session_id}",
                    us(start),
                    '{"access": "READ"}',
                ),
            ],
        )
    conn.execute("PRAGMA user_version = 14")
    conn.execute("COMMIT")
    conn.close()
    return shared


def migrate(path: Path) -> tuple[float, dict[str, int]]:
    (script,) = [text for version, text in schema.scripts() if version == 15]
    conn = sqlean.connect(str(path), isolation_level=None)
    started = time.perf_counter()
    schema.apply(conn, [(15, script)])
    seconds = time.perf_counter() - started
    counts = {
        "turns with an external author": conn.execute(
            "SELECT count(*) FROM turns WHERE author_entity_id IS NOT NULL"
        ).fetchone()[0],
        "sessions with external participants": conn.execute(
            "SELECT count(*) FROM sessions WHERE external_participants IS NOT NULL"
        ).fetchone()[0],
    }
    conn.close()
    return seconds, counts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_options(parser, turns=1_000_000, per_session=10)
    parser.add_argument("--external", type=float, default=0.05)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "old.db"
        started = time.perf_counter()
        shared = generate(path, args.turns, args.per_session, args.external, args.seed)
        sessions = args.turns // args.per_session
        print(
            f"{sessions * args.per_session:,} turns in {sessions:,} sessions, {shared:,} shared"
            f" externally with INTERACT; generated in {time.perf_counter() - started:.1f} s"
            f" ({path.stat().st_size / 1e6:,.0f} MB)"
        )
        seconds, counts = migrate(path)
    print(f"machine: {machine_facts()}")
    print(f"migration 0015: {seconds:.2f} s; {counts}")


if __name__ == "__main__":
    sys.exit(main())
