"""The SQLite store copies its WAL into the database in the background, so that no write
pays for a checkpoint, and the WAL still does not grow with everything ever written."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sessionhub.storage.sqlite import store as sqlite_store
from sessionhub.storage.sqlite.store import SqliteStore

from .test_store_contract import make_session, make_turn


async def test_the_wal_stays_small_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_SECONDS", 0.02)
    path = tmp_path / "db.sqlite"
    store = SqliteStore(str(path))
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
        # every write: about 4 MB per 50 turns here, 150 MB after all of them.
        assert max(wal_sizes[30:]) < 2 * max(wal_sizes[:10]), wal_sizes
        stored = await store.get_session(session.id)
        assert stored is not None and stored.turn_count == 2000
    finally:
        await store.close()
