"""The SQLite store copies its WAL into the database and merges its full-text index
segments in the background, so that no write pays for a checkpoint or a merge, and the WAL
and the number of segments still do not grow with everything ever written."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sessionhub.domain.query import (
    SearchFilter,
    SearchOrder,
    SearchRequest,
    SearchScope,
    parse_query,
)
from sessionhub.storage.sqlite import driver
from sessionhub.storage.sqlite.store import SqliteStore

from .test_store_contract import make_session, make_turn


async def test_the_wal_stays_small_under_steady_writes(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SqliteStore(str(path), checkpoint_seconds=0.02)
    await store.open()
    try:
        session = make_session()
        await store.create_session(session, None, 100_000)
        text = "the quick brown fox jumps over the lazy dog " * 50  # about 2 KB
        wal_sizes = []
        for _ in range(40):
            for _ in range(50):
                await store.append_turn(make_turn(session.id, content=text), 100_000)
            await asyncio.sleep(0.05)
            wal_sizes.append(Path(f"{path}-wal").stat().st_size)
        # Without the background checkpoints (SQLite's own are off) the WAL grows with
        # every write: about 4 MB per 50 turns here, 150 MB after all of them. On a busy
        # machine a checkpoint can lag a few rounds behind, so the bound is loose, but a
        # WAL that grows with what was written passes it by the twelfth round.
        assert max(wal_sizes[30:]) < 4 * max(wal_sizes[:10]), wal_sizes
        assert max(wal_sizes) < 40_000_000, wal_sizes
        stored = await store.get_session(session.id)
        assert stored is not None and stored.turn_count == 2000
    finally:
        await store.close()


def _segments(path: Path, table: str) -> int:
    conn = driver.sqlite.connect(path)
    try:
        (automerge,) = conn.execute(
            f"SELECT v FROM {table}_config WHERE k = 'automerge'"
        ).fetchone()
        assert automerge == 0  # no commit of a request merges
        (count,) = conn.execute(f"SELECT count(DISTINCT segid) FROM {table}_idx").fetchone()
        return count
    finally:
        conn.close()


async def test_index_segments_are_merged_in_the_background(tmp_path: Path) -> None:
    """Every write transaction leaves a new segment in each full-text index; with FTS5's
    own merging off, the store's background merges must keep their number down, or every
    search would look each word up in hundreds of segments."""
    path = tmp_path / "db.sqlite"
    store = SqliteStore(str(path))
    await store.open()
    try:
        session = make_session()
        await store.create_session(session, None, 100_000)
        for i in range(1000):
            text = f"turn {i} says kettle{i % 37} and teapot{i % 11} to the saucer"
            await store.append_turn(make_turn(session.id, content=text), 100_000)
        for _ in range(200):  # the merges catch up within a few seconds
            counts = [_segments(path, t) for t in ("search_index", "search_pairs")]
            if max(counts) <= 8:
                break
            await asyncio.sleep(0.05)
        # FTS5 alone (no automerge) would hold 12 to 30 segments here, at most 15 a level.
        assert max(counts) <= 8, counts
        hits = await store.search(
            SearchRequest(
                parse_query('"kettle5 and"'),
                SearchScope("acme", None),
                SearchFilter(),
                SearchOrder.NEWEST,
                None,
                5,
            )
        )
        assert [h.session.id for h in hits] == [session.id]
    finally:
        await store.close()
