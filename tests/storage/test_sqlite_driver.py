"""The one place the store reaches into aiosqlite's undocumented parts for a thread: the
connection's own, which a failed open waits for (storage/sqlite/driver.py)."""

from __future__ import annotations

import threading
from pathlib import Path

from sessionhub.storage.sqlite import driver


async def test_the_connection_thread_is_found_where_the_driver_looks(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    conn = await driver.connect(str(tmp_path / "sessionhub.db"))
    try:
        thread = driver.connection_thread(conn)
        # Should an aiosqlite upgrade keep its thread elsewhere, this fails, instead of a
        # failed open no longer waiting for the thread it leaves.
        assert thread is not None, "aiosqlite no longer keeps its thread where the driver looks"
        assert thread.is_alive() and thread not in before
        assert set(threading.enumerate()) - before == {thread}
    finally:
        await conn.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
