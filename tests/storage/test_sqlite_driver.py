"""The one place the store reaches into aiosqlite's undocumented parts
(storage/sqlite/driver.py): the connection's thread, which a failed open waits for, and
the way a whole transaction runs as one trip into that thread (`Connection._execute` on
`Connection._conn`). Should an aiosqlite upgrade move any of them, these fail naming it."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import aiosqlite

from sessionhub.storage.sqlite import driver


def test_the_private_names_of_aiosqlite_the_driver_uses_are_still_there() -> None:
    execute = inspect.getattr_static(aiosqlite.Connection, "_execute", None)
    assert inspect.iscoroutinefunction(execute), (
        "aiosqlite.Connection._execute is gone or no longer a coroutine function:"
        " driver.run cannot run a transaction in the connection's thread"
    )
    conn = inspect.getattr_static(aiosqlite.Connection, "_conn", None)
    assert isinstance(conn, property), (
        "aiosqlite.Connection._conn is gone or no longer a property:"
        " driver.run and driver.plain cannot reach the SQLite connection"
    )


async def test_a_function_runs_in_the_connections_thread_on_its_sqlite_connection(
    tmp_path: Path,
) -> None:
    conn = await driver.connect(str(tmp_path / "sessionhub.db"))
    try:

        def where(plain: driver.Connection, word: str) -> tuple[threading.Thread, object, str]:
            return threading.current_thread(), plain, word

        thread, plain, word = await driver.run(conn, where, "kettle")
        assert thread is driver.connection_thread(conn)
        assert plain is driver.plain(conn) and isinstance(plain, driver.Connection)
        assert word == "kettle"
    finally:
        await conn.close()


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
