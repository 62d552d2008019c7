"""The store's upkeep: the work it does by itself in the background (WAL checkpoints and
merges of the full-text index) and the check that
it is still ready to serve."""

from __future__ import annotations

import asyncio
import contextlib

import aiosqlite
import structlog

from ...domain.errors import StoreUnavailable
from . import driver, health
from .connections import Connections, apply_pragmas
from .search.query import FTS5_TABLES

log = structlog.get_logger(__name__)

# The WAL file is cut back to this size when it restarts (it can grow under a burst).
_WAL_KEPT = 64 * 1024 * 1024
# Leaf pages FTS5 writes per merge slice: about a millisecond of work here.
MERGE_PAGES = 32


class Upkeep:
    def __init__(self, connections: Connections, *, checkpoint_seconds: float) -> None:
        self._connections = connections
        self._checkpoint_seconds = checkpoint_seconds
        self._checkpoints: asyncio.Task[None] | None = None
        self._merges: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._opened_file: health.FileIdentity | None = None

    async def start(self) -> None:
        """Start the background work on the open connections (and, for a file, take
        checkpoints over from SQLite)."""
        self._closing = asyncio.Event()
        self._merges = asyncio.create_task(self._merge_forever())
        if self._connections.in_memory:
            return
        # SQLite checkpoints in the transaction that crosses 1,000 WAL pages, so every
        # thousandth write paid for copying the WAL into the database: the slowest 1% of
        # writes. A connection of its own does it in the background instead; PASSIVE never
        # blocks the writer or the readers.
        await self._connections.on_writer(
            apply_pragmas,
            ["PRAGMA wal_autocheckpoint = 0", f"PRAGMA journal_size_limit = {_WAL_KEPT}"],
        )
        checkpointer = await self._connections.connect(read_only=False)
        self._checkpoints = asyncio.create_task(self._checkpoint_forever(checkpointer))
        self._opened_file = health.FileIdentity.of(self._connections.path)

    async def stop(self) -> None:
        """Let the work under way finish, and start no more."""
        self._closing.set()
        for task in (self._merges, self._checkpoints):
            if task is not None:
                await task
        self._merges = self._checkpoints = None

    async def _checkpoint_forever(self, conn: aiosqlite.Connection) -> None:
        # Stopped by an event rather than cancelled, so that no checkpoint is cut off
        # inside the connection's thread.
        try:
            while not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._checkpoint_seconds)
                    break
                with contextlib.suppress(driver.DatabaseError):
                    await driver.run(conn, _checkpoint_passive)
        finally:
            await conn.close()

    async def _merge_forever(self) -> None:
        """FTS5 merges its index segments in the background (its own automerge is off,
        migration 0011): left to FTS5, every 64th leaf page written made one commit merge
        hundreds of pages, a write of tens of milliseconds in the middle of a request.
        Here the merging is done after writes, a slice at a time, each slice a write of
        its own that queues behind waiting requests like any other. A level is merged once
        it holds 8 segments (migration 0013): at FTS5's 4, the merges cost each append
        about nine times as much."""
        written = self._connections.written
        while not self._closing.is_set():
            waiting = asyncio.create_task(written.wait())
            closing = asyncio.create_task(self._closing.wait())
            await asyncio.wait((waiting, closing), return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            closing.cancel()
            if self._closing.is_set():
                return
            written.clear()
            for table in FTS5_TABLES:
                while not self._closing.is_set():
                    try:
                        if not await self._connections.write(_merge_slice, table, maintenance=True):
                            break
                    except StoreUnavailable:
                        log.warning("sqlite.merge_failed", table=table)
                        break

    async def check_ready(self) -> None:
        """The file the store opened is still at its path, on a writable filesystem with
        room left; a reader reads the schema; the writer commits a one-page write (which
        reaches the WAL file, so a filesystem that stopped taking writes fails it)."""
        path = self._connections.path
        if self._opened_file is not None:
            problem = health.file_problem(path, self._opened_file)
            if problem is not None:
                raise StoreUnavailable(problem)
        try:
            await self._connections.read(_read_probe)
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"reading {path} fails: {_driver_words(exc)}") from exc
        try:
            await self._connections.write(write_probe, maintenance=True)
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"writing {path} fails: {_driver_words(exc)}") from exc


def _driver_words(exc: StoreUnavailable) -> str:
    """SQLite's own message behind a translated error."""
    return str(exc.__cause__) if exc.__cause__ is not None else exc.message


# Below, what runs inside a connection's thread, on the plain SQLite connection.


def _checkpoint_passive(conn: driver.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def _merge_slice(conn: driver.Connection, table: str) -> bool:
    """A slice of FTS5's incremental merge; whether there was anything to merge (FTS5's
    documented test: the merge changed two rows or more)."""
    before = conn.total_changes
    conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('merge', ?)", (MERGE_PAGES,))
    return conn.total_changes - before >= 2


def _read_probe(conn: driver.Connection) -> None:
    conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()


def write_probe(conn: driver.Connection) -> None:
    """A real write that changes nothing: the schema version set to itself rewrites the
    database header, a WAL frame of one page."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    conn.execute(f"PRAGMA user_version = {int(version)}")
