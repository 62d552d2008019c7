"""Everything that names the SQLite library, or reaches into aiosqlite, lives in this module.

The store runs on `sqlean.py`, a build of the standard `sqlite3` module against a recent
SQLite (3.50) rather than whatever the operating system ships (3.40 on Debian 12). The
store needs two things older SQLite lacks: FTS5's `secure-delete` option, so that a deleted
or erased turn leaves no token behind in the full-text index, and the FTS5 speed-ups of
3.44 onwards. The module has the standard library's API, so the rest of storage/sqlite
uses it as `sqlite`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import aiosqlite
import sqlean as sqlite

Connection: TypeAlias = sqlite.Connection
DatabaseError = sqlite.DatabaseError
IntegrityError = sqlite.IntegrityError
OperationalError = sqlite.OperationalError
complete_statement = sqlite.complete_statement
sqlite_version = sqlite.sqlite_version

T = TypeVar("T")


def connect_memory() -> Connection:
    """A plain connection to a private in-memory database, for this thread only."""
    return sqlite.connect(":memory:", isolation_level=None)


async def connect(path: str) -> aiosqlite.Connection:
    """An aiosqlite connection (a thread owning one SQLite connection) in autocommit mode:
    the store opens its own transactions."""

    def connector() -> Connection:
        return sqlite.connect(path, isolation_level=None, check_same_thread=False)

    conn = aiosqlite.Connection(connector, iter_chunk_size=64)
    try:
        return await conn
    except BaseException:
        # When SQLite cannot open the file, aiosqlite stops the thread without waiting
        # for it. A thread still running when the event loop closes dies reporting to
        # it, with a traceback ("Event loop is closed") after the server's own message.
        thread = connection_thread(conn)
        if thread is not None:
            await asyncio.to_thread(thread.join)
        raise


def connection_thread(conn: aiosqlite.Connection) -> threading.Thread | None:
    """The thread that owns `conn`'s SQLite connection, or None if it cannot be found.
    aiosqlite keeps it as `_thread`, which it does not document (aiosqlite 0.22);
    tests/storage/test_sqlite_driver.py fails if an upgrade moves it."""
    thread = getattr(conn, "_thread", None)
    return thread if isinstance(thread, threading.Thread) else None


# aiosqlite runs each statement of its public API as one trip between the event loop and
# the connection's thread. The store runs a whole transaction as one plain function in that
# thread instead (one trip, and no other coroutine's statement can slip into the middle of
# it), through `Connection._execute` and `Connection._conn`, which aiosqlite does not
# document (aiosqlite 0.22); tests/storage/test_sqlite_driver.py fails, naming them, if an
# upgrade moves them.


def run(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
    """`fn(plain connection, *args)` in `conn`'s thread."""
    return conn._execute(fn, conn._conn, *args)


def plain(conn: aiosqlite.Connection) -> Connection:
    """The SQLite connection `conn`'s thread owns (to trace its statements, say)."""
    return conn._conn
