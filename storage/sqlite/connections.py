"""The connections to one SQLite file: one writer, a small pool of readers, and the
transactions the records run on them.

Each aiosqlite connection owns a thread. A whole transaction runs as one plain function
inside that thread (`driver.run`), so it costs one hop between the event loop and the
thread instead of one per statement, and no other coroutine's statement can slip into
the middle of it. Driver errors become domain errors here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import aiosqlite

from ...domain.errors import Conflict, StoreUnavailable
from . import driver, health

T = TypeVar("T")

MEMORY = ":memory:"


class Connections:
    def __init__(self, path: str, *, readers: int, busy_timeout_ms: int) -> None:
        self.path = path
        self._reader_count = 0 if path == MEMORY else readers
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self.written = asyncio.Event()
        """Set by every write but maintenance (background upkeep waits for it)."""

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    async def connect(self, *, read_only: bool) -> aiosqlite.Connection:
        """A new connection with the store's settings."""
        conn = await driver.connect(self.path)
        pragmas = [
            f"PRAGMA busy_timeout = {self._busy_timeout_ms}",
            "PRAGMA foreign_keys = ON",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA temp_store = MEMORY",
            "PRAGMA cache_size = -65536",
            "PRAGMA mmap_size = 268435456",
            # Freed space is overwritten with zeros: deleted text does not linger in pages.
            "PRAGMA secure_delete = ON",
        ]
        if read_only:
            pragmas.append("PRAGMA query_only = ON")
        try:
            await driver.run(conn, apply_pragmas, pragmas)
        except BaseException:
            # The first statement is where SQLite reads the file (and finds it is no
            # database). aiosqlite's thread is not a daemon: left running, it would keep
            # the process from ever exiting.
            await conn.close()
            raise
        return conn

    async def open(self, prepare: Callable[[driver.Connection], None]) -> None:
        """Connect the writer, run `prepare` on it (outside a transaction: what makes the
        file ready for the store), then connect the readers."""
        self._writer = await self.connect(read_only=False)
        await driver.run(self._writer, prepare)
        for _ in range(self._reader_count):
            reader = await self.connect(read_only=True)
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)

    async def on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn` on the writer outside a transaction (settings of the connection)."""
        assert self._writer is not None, "store is not open"
        return await driver.run(self._writer, fn, *args)

    async def close(self) -> None:
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    async def write(
        self, fn: Callable[..., T], *args: Any, purge: bool = False, maintenance: bool = False
    ) -> T:
        """`fn` in a write transaction. With `purge` (a write that deletes someone's data)
        the WAL is then checkpointed into the database file (whose freed space
        secure_delete zeroed) and truncated, so the deleted text is in neither file.
        Other than `maintenance` writes, each one sets `written`."""
        assert self._writer is not None, "store is not open"
        async with self._write_lock:
            with _translated_errors():
                result = await driver.run(self._writer, in_transaction, fn, args)
                if purge:
                    await driver.run(self._writer, _truncate_wal)
        if not maintenance:
            self.written.set()
        return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn` on a reader (on the writer, in a transaction, for a database in memory,
        which readers could not see)."""
        if not self._reader_count:
            return await self.write(fn, *args)
        reader = await self._readers.get()
        try:
            with _translated_errors():
                return await driver.run(reader, fn, *args)
        finally:
            self._readers.put_nowait(reader)

    def plain(self) -> list[driver.Connection]:
        """The SQLite connections, the writer's first (to trace their statements)."""
        assert self._writer is not None, "store is not open"
        return [driver.plain(c) for c in (self._writer, *self._all_readers)]


# Below, what runs inside a connection's thread, on the plain SQLite connection.


def apply_pragmas(conn: driver.Connection, pragmas: list[str]) -> None:
    for pragma in pragmas:
        conn.execute(pragma)


def in_transaction(conn: driver.Connection, fn: Callable[..., T], args: tuple = ()) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _truncate_wal(conn: driver.Connection) -> None:
    # Waits (busy_timeout) for readers still on older snapshots; should one outlast it,
    # the next deletion's checkpoint finishes the job.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except driver.IntegrityError as exc:
        raise Conflict(f"The change conflicts with stored data: {exc}") from exc
    except driver.OperationalError as exc:
        raise StoreUnavailable(f"The database could not complete the request: {exc}") from exc
    except driver.DatabaseError as exc:
        raise StoreUnavailable(f"The database failed: {exc}") from exc


@contextmanager
def opening_errors(path: str) -> Iterator[None]:
    """SQLite's complaint about the file at `path` as one an operator can act on."""
    try:
        yield
    except driver.DatabaseError as exc:
        raise StoreUnavailable(
            f"The SQLite database {path} cannot be opened: {health.why_unopenable(path, exc)}."
        ) from exc
