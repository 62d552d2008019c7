"""The embedded SQLite store: one file in WAL mode, one writer connection, a few readers.

Each aiosqlite connection owns a thread. A whole transaction runs as one plain function
inside that thread (`Connection._execute`), so it costs one hop between the event loop
and the thread instead of one per statement, and no other coroutine's statement can
slip into the middle of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from typing import Any, TypeVar

import aiosqlite
import orjson
import structlog

from ...domain.errors import Conflict, LimitExceeded, StoreUnavailable, session_not_found
from ...domain.models import (
    ERASED_AUTHOR,
    JSON,
    AuditEvent,
    AuditFilter,
    EntityTemplate,
    ErasureCounts,
    Feedback,
    GranteeKind,
    GranteeScope,
    KeysetCursor,
    NewTurn,
    OwnerScope,
    Person,
    Pin,
    Session,
    SessionCursor,
    SessionFilter,
    SessionStatus,
    SessionTemplate,
    Share,
    ShareMode,
    StarterTurn,
    TitleSource,
    Turn,
    TurnRole,
    TurnText,
    Verification,
)
from ...domain.query import (
    SearchCursor,
    SearchFilter,
    SearchOrder,
    SearchQuery,
    SearchScope,
    SessionHit,
)
from . import codec, driver, health, search, tokenizer
from .codec import SESSION_COLUMNS, TURN_COLUMNS, opt_micros, to_micros

log = structlog.get_logger(__name__)

T = TypeVar("T")

MEMORY = ":memory:"
# How often the background connection copies the WAL into the database file.
CHECKPOINT_SECONDS = 0.5
# The WAL file is cut back to this size when it restarts (it can grow under a burst).
_WAL_KEPT = 64 * 1024 * 1024
_SESSION_SELECT = f"SELECT {SESSION_COLUMNS} FROM sessions"
_TURN_SELECT = f"SELECT {TURN_COLUMNS} FROM turns"
_TURN_COLUMNS_OF_T = ", ".join(f"t.{c.strip()}" for c in TURN_COLUMNS.split(","))
_SHARE_COLUMNS = (
    "id, session_id, entity_id, grantee_kind, grantee_entity_id, grantee_user_id, mode, "
    "created_by, created_at, expires_at, revoked_at, revoked_by, token_hash"
)
_AUDIT_COLUMNS = "id, entity_id, actor_id, action, target, at, details"


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files(__package__) / "migrations"
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            found.append((int(item.name.split("_", 1)[0]), item.read_text()))
    return sorted(found)


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


def _driver_words(exc: StoreUnavailable) -> str:
    """SQLite's own message behind a translated error."""
    return str(exc.__cause__) if exc.__cause__ is not None else exc.message


@contextmanager
def _opening_errors(path: str) -> Iterator[None]:
    try:
        yield
    except driver.DatabaseError as exc:
        raise StoreUnavailable(
            f"The SQLite database {path} cannot be opened: {health.why_unopenable(path, exc)}."
        ) from exc


class SqliteStore:
    def __init__(self, path: str, *, readers: int = 4, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._reader_count = 0 if path == MEMORY else readers
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._checkpoints: asyncio.Task[None] | None = None
        self._merges: asyncio.Task[None] | None = None
        self._learning: asyncio.Task[None] | None = None
        self._written = asyncio.Event()
        self._closing = asyncio.Event()
        self._opened_file: health.FileIdentity | None = None

    # Connections

    async def _connect(self, *, read_only: bool) -> aiosqlite.Connection:
        conn = await driver.connect(self._path)
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
            await conn._execute(_apply_pragmas, conn._conn, pragmas)
        except BaseException:
            # The first statement is where SQLite reads the file (and finds it is no
            # database). aiosqlite's thread is not a daemon: left running, it would keep
            # the process from ever exiting.
            await conn.close()
            raise
        return conn

    async def open(self) -> None:
        """Connect, bring the schema up to date and start the background work; a store
        that fails to open (a migration that cannot run, a file it may not write) leaves
        no connection behind."""
        try:
            await self._open()
        except BaseException:
            await self.close()
            raise

    async def _open(self) -> None:
        with _opening_errors(self._path):
            self._writer = await self._connect(read_only=False)
            await self._writer._execute(search.register_functions, self._writer._conn)
            await self._writer._execute(_migrate, self._writer._conn, _migrations())
            # SQLite opens a file it may not write read-only, without a word, and a
            # database already migrated gives it no write to fail on: this one does.
            await self._writer._execute(_in_transaction, self._writer._conn, _write_probe, ())
            for _ in range(self._reader_count):
                reader = await self._connect(read_only=True)
                self._all_readers.append(reader)
                self._readers.put_nowait(reader)
            self._closing = asyncio.Event()
            self._merges = asyncio.create_task(self._merge_forever())
            self._learning = asyncio.create_task(self._learn_words())
            if self._path != MEMORY:
                # SQLite checkpoints in the transaction that crosses 1,000 WAL pages, so
                # every thousandth write paid for copying the WAL into the database: the
                # slowest 1% of writes. A connection of its own does it in the background
                # instead; PASSIVE never blocks the writer or the readers.
                await self._writer._execute(
                    _apply_pragmas,
                    self._writer._conn,
                    ["PRAGMA wal_autocheckpoint = 0", f"PRAGMA journal_size_limit = {_WAL_KEPT}"],
                )
                checkpointer = await self._connect(read_only=False)
                self._checkpoints = asyncio.create_task(self._checkpoint_forever(checkpointer))
                self._opened_file = health.FileIdentity.of(self._path)

    async def _checkpoint_forever(self, conn: aiosqlite.Connection) -> None:
        # Stopped by an event rather than cancelled, so that no checkpoint is cut off
        # inside the connection's thread.
        try:
            while not self._closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), CHECKPOINT_SECONDS)
                    break
                with contextlib.suppress(driver.DatabaseError):
                    await conn._execute(_checkpoint_passive, conn._conn)
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
        while not self._closing.is_set():
            written = asyncio.create_task(self._written.wait())
            closing = asyncio.create_task(self._closing.wait())
            await asyncio.wait((written, closing), return_when=asyncio.FIRST_COMPLETED)
            written.cancel()
            closing.cancel()
            if self._closing.is_set():
                return
            self._written.clear()
            for table in search.FTS5_TABLES:
                while not self._closing.is_set():
                    try:
                        if not await self._write(_merge_slice, table, maintenance=True):
                            break
                    except StoreUnavailable:
                        log.warning("sqlite.merge_failed", table=table)
                        break

    async def _learn_words(self) -> None:
        try:
            await self._read(_learn_words)
        except StoreUnavailable:
            log.warning("sqlite.learning_words_failed")

    async def close(self) -> None:
        self._closing.set()
        if self._learning is not None:
            await self._learning
            self._learning = None
        if self._merges is not None:
            await self._merges
            self._merges = None
        if self._checkpoints is not None:
            await self._checkpoints
            self._checkpoints = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    async def _write(
        self, fn: Callable[..., T], *args: Any, purge: bool = False, maintenance: bool = False
    ) -> T:
        """`fn` in a write transaction. With `purge` (a write that deletes someone's data)
        the WAL is then checkpointed into the database file (whose freed space
        secure_delete zeroed) and truncated, so the deleted text is in neither file.
        Other than `maintenance` writes, each one wakes the background index merges."""
        assert self._writer is not None, "store is not open"
        async with self._write_lock:
            with _translated_errors():
                result = await self._writer._execute(_in_transaction, self._writer._conn, fn, args)
                if purge:
                    await self._writer._execute(_truncate_wal, self._writer._conn)
        if not maintenance:
            self._written.set()
        return result

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._reader_count:
            return await self._write(fn, *args)
        reader = await self._readers.get()
        try:
            with _translated_errors():
                return await reader._execute(fn, reader._conn, *args)
        finally:
            self._readers.put_nowait(reader)

    async def check_ready(self) -> None:
        """The file the store opened is still at its path, on a writable filesystem with
        room left; a reader reads the schema; the writer commits a one-page write (which
        reaches the WAL file, so a filesystem that stopped taking writes fails it)."""
        if self._opened_file is not None:
            problem = health.file_problem(self._path, self._opened_file)
            if problem is not None:
                raise StoreUnavailable(problem)
        try:
            await self._read(_read_probe)
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"reading {self._path} fails: {_driver_words(exc)}") from exc
        try:
            await self._write(_write_probe, maintenance=True)
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"writing {self._path} fails: {_driver_words(exc)}") from exc

    # Sessions

    async def create_session(
        self, session: Session, first_turn: NewTurn | None, max_turns: int
    ) -> tuple[Session, Turn | None]:
        return await self._write(_create_session, session, first_turn, max_turns)

    async def get_session(self, session_id: str) -> Session | None:
        return await self._read(_get_session, session_id)

    async def rename_session(
        self,
        session_id: str,
        title: str,
        source: TitleSource,
        at: datetime,
        *,
        if_title_version: int | None = None,
    ) -> Session | None:
        return await self._write(_rename_session, session_id, title, source, at, if_title_version)

    async def set_archived(
        self, session_id: str, archived_at: datetime | None, at: datetime
    ) -> Session | None:
        return await self._write(_set_archived, session_id, archived_at, at)

    async def delete_session(
        self, session_id: str, audit: AuditEvent, redact: Callable[[JSON], JSON]
    ) -> bool:
        deleted = await self._write(_delete_session, session_id, audit, redact, purge=True)
        return deleted is not None

    async def set_tags(
        self, session_id: str, tags: list[str], at: datetime, audit: AuditEvent | None = None
    ) -> Session | None:
        return await self._write(_set_tags, session_id, tags, at, audit)

    async def set_status(
        self, session_id: str, status: SessionStatus, at: datetime
    ) -> Session | None:
        return await self._write(_set_status, session_id, status, at)

    async def apply_retention(self, chat_app_id: str, days: int, batch: int = 2000) -> int:
        # One batch per write transaction: the writer lock is released between batches.
        after, total = 0, 0
        while True:
            last, count = await self._write(
                _apply_retention_batch, chat_app_id, days * _DAY_US, after, batch
            )
            total += count
            if count < batch:
                return total
            after = last

    async def remove_expired(
        self,
        now: datetime,
        chat_app_id: str | None,
        batch: int,
        dry_run: bool,
        audit_for: Callable[[Session], AuditEvent],
        redact: Callable[[JSON], JSON],
        entity_id: str | None = None,
        after_id: str | None = None,
    ) -> list[Session]:
        # One batch is one write transaction; the caller loops, releasing the writer.
        if batch <= 0:
            return []
        if dry_run:
            return await self._read(_expired_sessions, now, chat_app_id, entity_id, after_id, batch)
        return await self._write(
            _remove_expired,
            now,
            chat_app_id,
            entity_id,
            after_id,
            batch,
            audit_for,
            redact,
            purge=True,
        )

    async def erase_sessions(
        self,
        session_ids: list[str],
        audit_for: Callable[[Session], AuditEvent],
        redact: Callable[[JSON], JSON],
    ) -> tuple[list[Session], int]:
        return await self._write(_erase_sessions, session_ids, audit_for, redact, purge=True)

    async def erase_contributions(
        self,
        entity_id: str,
        user_id: str,
        at: datetime,
        batch: int,
        redact: Callable[[JSON], JSON],
        opening_words: Callable[[str], str],
    ) -> tuple[ErasureCounts, list[str]]:
        return await self._write(
            _erase_contributions,
            entity_id,
            user_id,
            at,
            batch,
            redact,
            opening_words,
            purge=True,
        )

    async def tag_counts(
        self, scope: OwnerScope, now: datetime, limit: int
    ) -> list[tuple[str, int]]:
        return await self._read(_tag_counts, scope, now, limit)

    async def list_sessions(
        self,
        scope: OwnerScope,
        session_filter: SessionFilter,
        after: SessionCursor | None,
        limit: int,
    ) -> list[Session]:
        return await self._read(_list_sessions, scope, session_filter, after, limit)

    # Turns

    async def append_turn(
        self, turn: NewTurn, max_turns: int, retention_days: int | None = None
    ) -> tuple[Turn, Session]:
        return await self._write(_append_turn, turn, max_turns, retention_days)

    async def get_turn(self, turn_id: str) -> Turn | None:
        return await self._read(_get_turn, turn_id)

    async def list_turns(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int,
        newest_first: bool = False,
    ) -> list[Turn]:
        return await self._read(_list_turns, session_id, after_seq, before_seq, limit, newest_first)

    async def conversation(
        self, session_id: str, *, limit: int, newest_first: bool = False, chars: int
    ) -> list[TurnText]:
        return await self._read(_conversation, session_id, limit, newest_first, chars)

    async def set_verification(self, turn_id: str, verification: Verification) -> Turn | None:
        return await self._write(_set_verification, turn_id, verification)

    async def add_feedback(self, turn_id: str, feedback: Feedback) -> Turn | None:
        return await self._write(_add_feedback, turn_id, feedback)

    # Search

    async def search(
        self,
        query: SearchQuery,
        scope: SearchScope,
        search_filter: SearchFilter,
        order: SearchOrder,
        after: SearchCursor | None,
        limit: int,
    ) -> list[SessionHit]:
        return await self._read(search.search, query, scope, search_filter, order, after, limit)

    # Pins

    async def pin(self, entity_id: str, pin: Pin) -> None:
        await self._write(_pin, entity_id, pin)

    async def unpin(self, entity_id: str, user_id: str, session_id: str) -> None:
        await self._write(_unpin, entity_id, user_id, session_id)

    async def pinned_session_ids(
        self, entity_id: str, user_id: str, session_ids: list[str]
    ) -> set[str]:
        if not session_ids:
            return set()
        return await self._read(_pinned_session_ids, entity_id, user_id, session_ids)

    async def list_pinned(self, entity_id: str, user_id: str, limit: int) -> list[Session]:
        return await self._read(_list_pinned, entity_id, user_id, limit)

    # Shares

    async def create_share(self, share: Share, audit: AuditEvent) -> Share:
        return await self._write(_create_share, share, audit)

    async def get_share(self, share_id: str) -> Share | None:
        return await self._read(_get_share, "id", share_id)

    async def share_by_token_hash(self, token_hash: str) -> Share | None:
        return await self._read(_get_share, "token_hash", token_hash)

    async def list_shares(self, session_id: str) -> list[Share]:
        return await self._read(_list_shares, session_id)

    async def revoke_share(
        self, share_id: str, at: datetime, by: str, audit: AuditEvent
    ) -> Share | None:
        return await self._write(_revoke_share, share_id, at, by, audit)

    async def record_link_visit(
        self, share: Share, entity_id: str, user_id: str, at: datetime, audit: AuditEvent | None
    ) -> None:
        await self._write(_record_link_visit, share, entity_id, user_id, at, audit)

    async def opened_link_ids(self, session_id: str, entity_id: str, user_id: str) -> set[str]:
        return await self._read(_opened_link_ids, session_id, entity_id, user_id)

    async def list_shared_with(
        self, scope: GranteeScope, now: datetime, after: KeysetCursor | None, limit: int
    ) -> list[tuple[Session, datetime]]:
        return await self._read(_list_shared_with, scope, now, after, limit)

    async def expire_due_shares(
        self, now: datetime, limit: int, audit_for: Callable[[Share], AuditEvent]
    ) -> list[Share]:
        return await self._write(_expire_due_shares, now, limit, audit_for)

    # Audit

    async def append_audit(self, event: AuditEvent) -> None:
        await self._write(_insert_audit, event)

    async def list_audit(
        self,
        entity_id: str,
        audit_filter: AuditFilter,
        after: KeysetCursor | None,
        limit: int,
    ) -> list[AuditEvent]:
        return await self._read(_list_audit, entity_id, audit_filter, after, limit)

    # Session templates defined by admins

    async def create_template(self, template: EntityTemplate, audit: AuditEvent) -> None:
        await self._write(_create_template, template, audit)

    async def get_template(self, entity_id: str, template_id: str) -> EntityTemplate | None:
        return await self._read(_get_template, entity_id, template_id)

    async def list_templates(self, entity_id: str, chat_app_id: str) -> list[EntityTemplate]:
        return await self._read(_list_templates, entity_id, chat_app_id)

    async def update_template(self, template: EntityTemplate, audit: AuditEvent) -> bool:
        return await self._write(_update_template, template, audit)

    async def delete_template(self, entity_id: str, template_id: str, audit: AuditEvent) -> bool:
        return await self._write(_delete_template, entity_id, template_id, audit)


# Everything below runs inside a connection's thread, on the plain SQLite connection.


def _apply_pragmas(conn: driver.Connection, pragmas: list[str]) -> None:
    for pragma in pragmas:
        conn.execute(pragma)


def _migrate(conn: driver.Connection, migrations: list[tuple[int, str]]) -> None:
    # WAL must be switched on outside a transaction; it is a property of the file.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        for version, script in migrations:
            if version <= current:
                continue
            for statement in _split_sql(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _split_sql(script: str) -> list[str]:
    """Statements of a migration, keeping trigger bodies (which contain ';') whole."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buffer += line
        if driver.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _in_transaction(conn: driver.Connection, fn: Callable[..., T], args: tuple) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


_DAY_US = 86_400_000_000


# Leaf pages FTS5 writes per merge slice: about a millisecond of work here.
MERGE_PAGES = 32


def _merge_slice(conn: driver.Connection, table: str) -> bool:
    """A slice of FTS5's incremental merge; whether there was anything to merge (FTS5's
    documented test: the merge changed two rows or more)."""
    before = conn.total_changes
    conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('merge', ?)", (MERGE_PAGES,))
    return conn.total_changes - before >= 2


# Turns whose words the search's tokenizer learns at start: runs of consecutive turns
# spread over the whole history (a chat's vocabulary is mostly in a few thousand turns;
# the newest alone may be one conversation), read in the background by one reader.
LEARNED_RUNS, LEARNED_RUN_TURNS = 50, 100


def _learn_words(conn: driver.Connection) -> None:
    # Two look-ups at the ends of the table; min() and max() in one SELECT scan it.
    (low,) = conn.execute("SELECT min(rowid) FROM turns").fetchone()
    (high,) = conn.execute("SELECT max(rowid) FROM turns").fetchone()
    if low is None:
        return
    step = max(1, (high - low) // LEARNED_RUNS)
    for start in range(low, high + 1, step):
        rows = conn.execute(
            "SELECT content FROM turns WHERE rowid >= ? ORDER BY rowid LIMIT ?",
            (start, LEARNED_RUN_TURNS),
        ).fetchall()
        tokenizer.learn(content for (content,) in rows)


def _checkpoint_passive(conn: driver.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


def _truncate_wal(conn: driver.Connection) -> None:
    # Waits (busy_timeout) for readers still on older snapshots; should one outlast it,
    # the next deletion's checkpoint finishes the job.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()


def _read_probe(conn: driver.Connection) -> None:
    conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()


def _write_probe(conn: driver.Connection) -> None:
    # Setting the schema version to itself changes nothing but is a real write of the
    # database header: a WAL frame of one page.
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    conn.execute(f"PRAGMA user_version = {int(version)}")


def _get_session(conn: driver.Connection, session_id: str) -> Session | None:
    row = conn.execute(f"{_SESSION_SELECT} WHERE id = ?", (session_id,)).fetchone()
    return None if row is None else codec.session_from_row(row)


def _require_session(conn: driver.Connection, session_id: str) -> Session:
    session = _get_session(conn, session_id)
    if session is None:
        raise session_not_found(session_id)
    return session


def _create_session(
    conn: driver.Connection, session: Session, first_turn: NewTurn | None, max_turns: int
) -> tuple[Session, Turn | None]:
    placeholders = ", ".join("?" * len(SESSION_COLUMNS.split(",")))
    conn.execute(
        f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({placeholders})",
        codec.session_row(session),
    )
    conn.executemany(
        "INSERT INTO session_tags (session_id, tag) VALUES (?, ?)",
        [(session.id, tag) for tag in session.tags],
    )
    search.index_title(conn, session.id)
    if first_turn is None:
        return session, None
    turn, stored = _append_turn(conn, first_turn, max_turns)
    return stored, turn


def _append_turn(
    conn: driver.Connection, new: NewTurn, max_turns: int, retention_days: int | None = None
) -> tuple[Turn, Session]:
    at = to_micros(new.created_at)
    # With retention, the expiry follows the new last activity (SET reads the old values).
    retention_us = None if retention_days is None else retention_days * _DAY_US
    row = conn.execute(
        "UPDATE sessions SET turn_count = turn_count + 1,"
        " last_activity_at = max(last_activity_at, ?), updated_at = max(updated_at, ?),"
        " expires_at = CASE WHEN ? IS NULL THEN expires_at"
        "  ELSE max(last_activity_at, ?) + ? END,"
        " input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, cost = cost + ?"
        " WHERE id = ? AND turn_count < ?"
        " RETURNING turn_count, entity_id, participants, external_participants",
        (
            at,
            at,
            retention_us,
            at,
            retention_us,
            new.usage.input_tokens,
            new.usage.output_tokens,
            new.usage.cost,
            new.session_id,
            max_turns,
        ),
    ).fetchone()
    if row is None:
        exists = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (new.session_id,)).fetchone()
        if exists is None:
            raise session_not_found(new.session_id)
        raise LimitExceeded(
            f"The session already holds {max_turns} turns, the most its chat app allows."
        )
    seq, entity_id, participants_json, external_json = row
    if new.author_entity_id == entity_id:
        participants = orjson.loads(participants_json)
        if new.author_id not in participants:
            conn.execute(
                "UPDATE sessions SET participants = ? WHERE id = ?",
                (orjson.dumps([*participants, new.author_id]).decode(), new.session_id),
            )
    else:
        external = codec.people_from_json(external_json)
        if new.author not in external:
            conn.execute(
                "UPDATE sessions SET external_participants = ? WHERE id = ?",
                (codec.people_to_json([*external, new.author]), new.session_id),
            )
    turn = Turn.numbered(new, seq, entity_id)
    placeholders = ", ".join("?" * 18)
    row = codec.turn_row(turn)
    inserted = conn.execute(f"INSERT INTO turns ({TURN_COLUMNS}) VALUES ({placeholders})", row)
    session = _require_session(conn, new.session_id)
    tools_json = row[7]
    search.index_turn(
        conn, inserted.lastrowid, session, turn.role.value, turn.content, tools_json, at
    )
    return turn, session


def _rename_session(
    conn: driver.Connection,
    session_id: str,
    title: str,
    source: TitleSource,
    at: datetime,
    if_title_version: int | None,
) -> Session | None:
    renamed = conn.execute(
        "UPDATE sessions SET title = ?, title_source = ?, updated_at = ?,"
        " title_version = title_version + 1"
        " WHERE id = ? AND (? = 'MANUAL' OR title_source != 'MANUAL')"
        " AND (? IS NULL OR title_version = ?)",
        (
            title,
            source.value,
            to_micros(at),
            session_id,
            source.value,
            if_title_version,
            if_title_version,
        ),
    ).rowcount
    if not renamed:
        return None
    search.index_title(conn, session_id)
    return _get_session(conn, session_id)


def _set_archived(
    conn: driver.Connection, session_id: str, archived_at: datetime | None, at: datetime
) -> Session | None:
    conn.execute(
        "UPDATE sessions SET archived_at = ?, updated_at = ? WHERE id = ?",
        (opt_micros(archived_at), to_micros(at), session_id),
    )
    return _get_session(conn, session_id)


def _set_tags(
    conn: driver.Connection,
    session_id: str,
    tags: list[str],
    at: datetime,
    audit: AuditEvent | None,
) -> Session | None:
    # The tags column is what a session reads back; session_tags is what the listing's and
    # search's tag filters join, so both change in this one transaction.
    changed = conn.execute(
        "UPDATE sessions SET tags = ?, updated_at = ? WHERE id = ?",
        (orjson.dumps(list(tags)).decode(), to_micros(at), session_id),
    ).rowcount
    if not changed:
        return None
    conn.execute("DELETE FROM session_tags WHERE session_id = ?", (session_id,))
    conn.executemany(
        "INSERT INTO session_tags (session_id, tag) VALUES (?, ?)",
        [(session_id, tag) for tag in dict.fromkeys(tags)],
    )
    if audit is not None:
        _insert_audit(conn, audit)
    return _get_session(conn, session_id)


def _apply_retention_batch(
    conn: driver.Connection, chat_app_id: str, retention_us: int, after_rowid: int, batch: int
) -> tuple[int, int]:
    rows = conn.execute(
        "SELECT rowid FROM sessions WHERE chat_app_id = ? AND rowid > ? ORDER BY rowid LIMIT ?",
        (chat_app_id, after_rowid, batch),
    ).fetchall()
    if not rows:
        return after_rowid, 0
    first, last = rows[0][0], rows[-1][0]
    conn.execute(
        "UPDATE sessions SET expires_at = last_activity_at + ?"
        " WHERE chat_app_id = ? AND rowid BETWEEN ? AND ?"
        " AND expires_at IS NOT last_activity_at + ?",
        (retention_us, chat_app_id, first, last, retention_us),
    )
    return last, len(rows)


def _set_status(
    conn: driver.Connection, session_id: str, status: SessionStatus, at: datetime
) -> Session | None:
    conn.execute(
        "UPDATE sessions SET status = ?, updated_at = ? WHERE id = ?",
        (status.value, to_micros(at), session_id),
    )
    return _get_session(conn, session_id)


def _tag_counts(
    conn: driver.Connection, scope: OwnerScope, now: datetime, limit: int
) -> list[tuple[str, int]]:
    clauses = ["s.entity_id = ?", "(s.expires_at IS NULL OR s.expires_at > ?)"]
    params: list[Any] = [scope.entity_id, to_micros(now)]
    if scope.owner_id is not None:
        clauses.append("s.owner_id = ?")
        params.append(scope.owner_id)
    params.append(limit)
    rows = conn.execute(
        "SELECT t.tag, count(*) AS n FROM session_tags t JOIN sessions s ON s.id = t.session_id"
        f" WHERE {' AND '.join(clauses)} GROUP BY t.tag ORDER BY n DESC, t.tag LIMIT ?",
        params,
    ).fetchall()
    return [(tag, n) for tag, n in rows]


def _delete_session(
    conn: driver.Connection, session_id: str, audit: AuditEvent, redact: Callable[[JSON], JSON]
) -> int | None:
    """Delete the session; how many earlier events about it were redacted, None when there
    was no session."""
    # Turns, tags, pins and shares go with the session through ON DELETE CASCADE; the
    # search index is a virtual table, cleared by hand first. The earlier events about the
    # session keep no content of it (tag names ...): only what `audit` records stays.
    row = conn.execute("SELECT entity_id FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        return None
    redacted = _redact_audit(
        conn, "entity_id = ? AND target = ?", (row[0], f"session:{session_id}"), redact
    )
    search.unindex_session(conn, session_id)
    conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
    _insert_audit(conn, audit)
    return redacted


def _redact_audit(
    conn: driver.Connection,
    where: str,
    params: tuple,
    redact: Callable[[JSON], JSON],
    limit: int = -1,
) -> int:
    rows = conn.execute(
        f"SELECT rowid, details FROM audit WHERE {where}"
        " AND (details IS NULL OR json_extract(details, '$.redacted') IS NOT 1) LIMIT ?",
        (*params, limit),
    ).fetchall()
    conn.executemany(
        "UPDATE audit SET details = ? WHERE rowid = ?",
        [(codec.dump_json(redact(codec.load_json(details))), rowid) for rowid, details in rows],
    )
    return len(rows)


def _erase_sessions(
    conn: driver.Connection,
    session_ids: list[str],
    audit_for: Callable[[Session], AuditEvent],
    redact: Callable[[JSON], JSON],
) -> tuple[list[Session], int]:
    erased, redacted = [], 0
    for session_id in session_ids:
        session = _get_session(conn, session_id)
        if session is None:
            continue
        redacted += _delete_session(conn, session.id, audit_for(session), redact) or 0
        erased.append(session)
    return erased, redacted


def _erase_contributions(
    conn: driver.Connection,
    entity_id: str,
    user_id: str,
    at: datetime,
    batch: int,
    redact: Callable[[JSON], JSON],
    opening_words: Callable[[str], str],
) -> tuple[ErasureCounts, list[str]]:
    counts, retitled = ErasureCounts(), []
    erased_metadata = codec.dump_json({"erasedAt": at.isoformat()})
    # Sessions of their entity they took part in (their own are gone by now), then those of
    # other entities they took part in as an external grantee: empty their turns there.
    # A user of another entity with the same id is someone else, and keeps everything.
    joined = conn.execute(
        "SELECT id, entity_id FROM sessions WHERE entity_id = ? AND owner_id != ?"
        " AND EXISTS (SELECT 1 FROM json_each(participants) WHERE value = ?) LIMIT ?",
        (entity_id, user_id, user_id, batch),
    ).fetchall()
    visited = conn.execute(
        "SELECT id, entity_id FROM sessions INDEXED BY sessions_with_external_participants"
        " WHERE external_participants IS NOT NULL AND EXISTS (SELECT 1 FROM"
        " json_each(external_participants) WHERE value ->> 'entity_id' = ?"
        " AND value ->> 'user_id' = ?) LIMIT ?",
        (entity_id, user_id, batch),
    ).fetchall()
    person = Person(entity_id, user_id)
    for session_id, session_entity_id in [*joined, *visited]:
        own = session_entity_id == entity_id
        # No entity stored: written before people carried theirs, the session's.
        rowids = [
            rowid
            for (rowid,) in conn.execute(
                "SELECT rowid FROM turns WHERE session_id = ? AND author_id = ?"
                " AND coalesce(author_entity_id, ?) = ?",
                (session_id, user_id, session_entity_id, entity_id),
            )
        ]
        said = _says_something(conn, rowids)
        search.unindex_turns(conn, session_entity_id, rowids)
        conn.executemany(
            "UPDATE turns SET content = '', author_id = ?, author_entity_id = ?, parts = NULL,"
            " tool_invocations = NULL, trace = NULL, verification = NULL, feedback = NULL,"
            " insights = NULL, metadata = ? WHERE rowid = ?",
            [(ERASED_AUTHOR, session_entity_id, erased_metadata, r) for r in rowids],
        )
        session = _require_session(conn, session_id)
        if own:
            conn.execute(
                "UPDATE sessions SET participants = ? WHERE id = ?",
                (codec.dump_json([p for p in session.participants if p != user_id]), session_id),
            )
        else:
            conn.execute(
                "UPDATE sessions SET external_participants = ? WHERE id = ?",
                (
                    codec.people_to_json([p for p in session.external_participants if p != person]),
                    session_id,
                ),
            )
        if said and _retitle_without_erased(conn, session, at, opening_words):
            retitled.append(session_id)
        counts.authored_turns += len(rowids)
        counts.participations += 1
    counts.titles = len(retitled)
    rated = conn.execute(
        "SELECT t.rowid, t.feedback, s.entity_id FROM turns t JOIN sessions s"
        " ON s.id = t.session_id WHERE t.feedback IS NOT NULL AND EXISTS (SELECT 1 FROM"
        " json_each(t.feedback) f WHERE f.value ->> 'user_id' = ?"
        " AND coalesce(f.value ->> 'entity_id', s.entity_id) = ?) LIMIT ?",
        (user_id, entity_id, batch),
    ).fetchall()
    for rowid, feedback, session_entity_id in rated:
        kept = codec.feedback_changed(feedback, session_entity_id, lambda f: f.given_by == person)
        conn.execute("UPDATE turns SET feedback = ? WHERE rowid = ?", (kept, rowid))
        counts.feedback += 1
    counts.pins = conn.execute(
        "DELETE FROM pins WHERE entity_id = ? AND user_id = ?", (entity_id, user_id)
    ).rowcount
    counts.shares = conn.execute(
        "DELETE FROM shares WHERE grantee_entity_id = ? AND grantee_user_id = ?",
        (entity_id, user_id),
    ).rowcount
    counts.link_visits = conn.execute(
        "DELETE FROM share_link_visits WHERE entity_id = ? AND user_id = ?", (entity_id, user_id)
    ).rowcount
    # Shares and templates are made by managers and admins, always of the row's entity.
    for table, column in (
        ("shares", "created_by"),
        ("shares", "revoked_by"),
        ("templates", "created_by"),
    ):
        conn.execute(
            f"UPDATE {table} SET {column} = ? WHERE entity_id = ? AND {column} = ?",
            (ERASED_AUTHOR, entity_id, user_id),
        )
    # Their events in their entity's trail; an event that names another actor entity is
    # by someone else who has the same id.
    counts.audit_events = _redact_audit(
        conn,
        "entity_id = ? AND actor_id = ? AND details ->> 'actorEntityId' IS NULL",
        (entity_id, user_id),
        redact,
        batch,
    )
    return counts, retitled


def _says_something(conn: driver.Connection, rowids: list[int]) -> bool:
    """Whether any of the turns is one titles are made from (see `_conversation`)."""
    if not rowids:
        return False
    (found,) = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM turns WHERE role IN ('USER', 'ASSISTANT')"
        " AND trim(content, ' ' || char(9, 10, 13)) != ''"
        f" AND rowid IN ({', '.join('?' * len(rowids))}))",
        rowids,
    ).fetchone()
    return bool(found)


def _retitle_without_erased(
    conn: driver.Connection, session: Session, at: datetime, opening_words: Callable[[str], str]
) -> bool:
    """A generated title may hold words of the turns just emptied (which turns it was made
    from is not kept): it makes way for the opening words of the first USER turn left, as
    a new session shows, PENDING, in the index too. A MANUAL title is the owner's own."""
    if session.title_source is TitleSource.MANUAL:
        return False
    first = conn.execute(
        "SELECT content FROM turns WHERE session_id = ? AND role = 'USER'"
        " AND trim(content, ' ' || char(9, 10, 13)) != '' ORDER BY seq LIMIT 1",
        (session.id,),
    ).fetchone()
    conn.execute(
        "UPDATE sessions SET title = ?, title_source = ?, updated_at = max(updated_at, ?),"
        " title_version = title_version + 1 WHERE id = ?",
        (
            (opening_words(first[0]) or None) if first else None,
            TitleSource.PENDING.value,
            to_micros(at),
            session.id,
        ),
    )
    search.index_title(conn, session.id)
    return True


def _expired_sessions(
    conn: driver.Connection,
    now: datetime,
    chat_app_id: str | None,
    entity_id: str | None,
    after_id: str | None,
    batch: int,
) -> list[Session]:
    clauses = ["expires_at IS NOT NULL", "expires_at <= ?"]
    params: list[Any] = [to_micros(now)]
    for column, value in (("chat_app_id", chat_app_id), ("entity_id", entity_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if after_id is not None:
        clauses.append("id > ?")
        params.append(after_id)
    params.append(batch)
    rows = conn.execute(
        f"{_SESSION_SELECT} WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?", params
    ).fetchall()
    return [codec.session_from_row(r) for r in rows]


def _remove_expired(
    conn: driver.Connection,
    now: datetime,
    chat_app_id: str | None,
    entity_id: str | None,
    after_id: str | None,
    batch: int,
    audit_for: Callable[[Session], AuditEvent],
    redact: Callable[[JSON], JSON],
) -> list[Session]:
    expired = _expired_sessions(conn, now, chat_app_id, entity_id, after_id, batch)
    return [s for s in expired if _delete_session(conn, s.id, audit_for(s), redact) is not None]


def _list_sessions(
    conn: driver.Connection,
    scope: OwnerScope,
    session_filter: SessionFilter,
    after: SessionCursor | None,
    limit: int,
) -> list[Session]:
    clauses = ["entity_id = ?"]
    params: list[Any] = [scope.entity_id]
    if scope.owner_id is not None:
        clauses.append("owner_id = ?")
        params.append(scope.owner_id)
    if session_filter.archived is not None:
        clauses.append("archived = ?")
        params.append(int(session_filter.archived))
    if session_filter.chat_app_ids:
        clauses.append(f"chat_app_id IN ({', '.join('?' * len(session_filter.chat_app_ids))})")
        params.extend(session_filter.chat_app_ids)
    if session_filter.tag is not None:
        clauses.append(
            "EXISTS (SELECT 1 FROM session_tags t WHERE t.session_id = sessions.id AND t.tag = ?)"
        )
        params.append(session_filter.tag)
    if session_filter.live_at is not None:
        clauses.append("(expires_at IS NULL OR expires_at > ?)")
        params.append(to_micros(session_filter.live_at))
    if after is not None:
        clauses.append("(last_activity_at, id) < (?, ?)")
        params.extend([to_micros(after.last_activity_at), after.session_id])
    params.append(limit)
    rows = conn.execute(
        f"{_SESSION_SELECT} WHERE {' AND '.join(clauses)}"
        " ORDER BY last_activity_at DESC, id DESC LIMIT ?",
        params,
    ).fetchall()
    return [codec.session_from_row(r) for r in rows]


def _get_turn(conn: driver.Connection, turn_id: str) -> Turn | None:
    # One statement whether the turn exists or not: a turn of another entity costs what a
    # missing one costs (tests/security/test_speakers_probing.py).
    row = conn.execute(
        f"SELECT {_TURN_COLUMNS_OF_T}, s.entity_id FROM turns t"
        " JOIN sessions s ON s.id = t.session_id WHERE t.id = ?",
        (turn_id,),
    ).fetchone()
    return None if row is None else codec.turn_from_row(row[:-1], row[-1])


def _session_entity(conn: driver.Connection, session_id: str) -> str | None:
    row = conn.execute("SELECT entity_id FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return None if row is None else row[0]


def _list_turns(
    conn: driver.Connection,
    session_id: str,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
    newest_first: bool,
) -> list[Turn]:
    clauses, params = ["session_id = ?"], [session_id]
    if after_seq is not None:
        clauses.append("seq > ?")
        params.append(after_seq)
    if before_seq is not None:
        clauses.append("seq < ?")
        params.append(before_seq)
    order = "DESC" if newest_first else "ASC"
    # The session's entity once for the page, not a look-up per row.
    entity_id = _session_entity(conn, session_id)
    if entity_id is None:
        return []
    rows = conn.execute(
        f"{_TURN_SELECT} WHERE {' AND '.join(clauses)} ORDER BY seq {order} LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [codec.turn_from_row(r, entity_id) for r in rows]


def _conversation(
    conn: driver.Connection, session_id: str, limit: int, newest_first: bool, chars: int
) -> list[TurnText]:
    rows = conn.execute(
        "SELECT role, substr(content, 1, ?) FROM turns WHERE session_id = ?"
        " AND role IN ('USER', 'ASSISTANT') AND trim(content, ' ' || char(9, 10, 13)) != ''"
        f" ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT ?",
        (chars, session_id, limit),
    ).fetchall()
    return [TurnText(TurnRole(role), text) for role, text in rows]


def _touch_session_of_turn(conn: driver.Connection, turn_id: str, at: datetime) -> None:
    conn.execute(
        "UPDATE sessions SET updated_at = max(updated_at, ?)"
        " WHERE id = (SELECT session_id FROM turns WHERE id = ?)",
        (to_micros(at), turn_id),
    )


def _set_verification(
    conn: driver.Connection, turn_id: str, verification: Verification
) -> Turn | None:
    if not conn.execute(
        "UPDATE turns SET verification = ? WHERE id = ?",
        (codec.verification_to_json(verification), turn_id),
    ).rowcount:
        return None
    _touch_session_of_turn(conn, turn_id, verification.verified_at)
    return _get_turn(conn, turn_id)


def _add_feedback(conn: driver.Connection, turn_id: str, feedback: Feedback) -> Turn | None:
    row = conn.execute(
        "SELECT t.feedback, s.entity_id FROM turns t JOIN sessions s ON s.id = t.session_id"
        " WHERE t.id = ?",
        (turn_id,),
    ).fetchone()
    if row is None:
        return None
    stored, entity_id = row
    # One feedback of each kind per person: the same user id of another entity is someone
    # else, whose feedback stays.
    items = codec.feedback_changed(
        stored,
        entity_id,
        lambda f: f.given_by == feedback.given_by and f.kind == feedback.kind,
        feedback,
    )
    conn.execute("UPDATE turns SET feedback = ? WHERE id = ?", (items, turn_id))
    _touch_session_of_turn(conn, turn_id, feedback.at)
    return _get_turn(conn, turn_id)


def _pin(conn: driver.Connection, entity_id: str, pin: Pin) -> None:
    conn.execute(
        "INSERT INTO pins (entity_id, user_id, session_id, pinned_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (entity_id, pin.user_id, pin.session_id, to_micros(pin.pinned_at)),
    )


def _unpin(conn: driver.Connection, entity_id: str, user_id: str, session_id: str) -> None:
    conn.execute(
        "DELETE FROM pins WHERE entity_id = ? AND user_id = ? AND session_id = ?",
        (entity_id, user_id, session_id),
    )


def _pinned_session_ids(
    conn: driver.Connection, entity_id: str, user_id: str, session_ids: list[str]
) -> set[str]:
    rows = conn.execute(
        "SELECT session_id FROM pins WHERE entity_id = ? AND user_id = ?"
        f" AND session_id IN ({', '.join('?' * len(session_ids))})",
        (entity_id, user_id, *session_ids),
    ).fetchall()
    return {r[0] for r in rows}


def _list_pinned(
    conn: driver.Connection, entity_id: str, user_id: str, limit: int
) -> list[Session]:
    columns = ", ".join(f"s.{c.strip()}" for c in SESSION_COLUMNS.split(","))
    rows = conn.execute(
        f"SELECT {columns} FROM pins p JOIN sessions s ON s.id = p.session_id"
        " WHERE p.entity_id = ? AND p.user_id = ? ORDER BY p.pinned_at DESC LIMIT ?",
        (entity_id, user_id, limit),
    ).fetchall()
    return [codec.session_from_row(r) for r in rows]


def _share_from_row(r: tuple) -> Share:
    return Share(
        id=r[0],
        session_id=r[1],
        entity_id=r[2],
        grantee_kind=GranteeKind(r[3]),
        grantee_entity_id=r[4],
        grantee_user_id=r[5],
        mode=ShareMode(r[6]),
        created_by=r[7],
        created_at=codec.from_micros(r[8]),
        expires_at=codec.opt_datetime(r[9]),
        revoked_at=codec.opt_datetime(r[10]),
        revoked_by=r[11],
        token_hash=r[12],
    )


def _create_share(conn: driver.Connection, share: Share, audit: AuditEvent) -> Share:
    _require_session(conn, share.session_id)
    conn.execute(
        f"INSERT INTO shares ({_SHARE_COLUMNS}) VALUES ({', '.join('?' * 13)})",
        (
            share.id,
            share.session_id,
            share.entity_id,
            share.grantee_kind.value,
            share.grantee_entity_id,
            share.grantee_user_id,
            share.mode.value,
            share.created_by,
            to_micros(share.created_at),
            opt_micros(share.expires_at),
            opt_micros(share.revoked_at),
            share.revoked_by,
            share.token_hash,
        ),
    )
    if share.grantee_kind is GranteeKind.ENTITY:
        search.rescope_session(conn, share.session_id)
    _insert_audit(conn, audit)
    return share


def _get_share(conn: driver.Connection, column: str, value: str) -> Share | None:
    row = conn.execute(
        f"SELECT {_SHARE_COLUMNS} FROM shares WHERE {column} = ?", (value,)
    ).fetchone()
    return None if row is None else _share_from_row(row)


def _list_shares(conn: driver.Connection, session_id: str) -> list[Share]:
    rows = conn.execute(
        f"SELECT {_SHARE_COLUMNS} FROM shares WHERE session_id = ? ORDER BY created_at, id",
        (session_id,),
    ).fetchall()
    return [_share_from_row(r) for r in rows]


def _revoke_share(
    conn: driver.Connection, share_id: str, at: datetime, by: str, audit: AuditEvent
) -> Share | None:
    revoked = conn.execute(
        "UPDATE shares SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        (to_micros(at), by, share_id),
    ).rowcount
    share = _get_share(conn, "id", share_id)
    if revoked:
        _insert_audit(conn, audit)
        if share is not None and share.grantee_kind is GranteeKind.ENTITY:
            search.rescope_session(conn, share.session_id)
    return share


def _record_link_visit(
    conn: driver.Connection,
    share: Share,
    entity_id: str,
    user_id: str,
    at: datetime,
    audit: AuditEvent | None,
) -> None:
    conn.execute(
        "INSERT INTO share_link_visits (share_id, entity_id, user_id, session_id, opened_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET opened_at = excluded.opened_at",
        (share.id, entity_id, user_id, share.session_id, to_micros(at)),
    )
    if audit is not None:
        _insert_audit(conn, audit)


def _opened_link_ids(
    conn: driver.Connection, session_id: str, entity_id: str, user_id: str
) -> set[str]:
    rows = conn.execute(
        "SELECT share_id FROM share_link_visits"
        " WHERE entity_id = ? AND user_id = ? AND session_id = ?",
        (entity_id, user_id, session_id),
    ).fetchall()
    return {r[0] for r in rows}


def _list_shared_with(
    conn: driver.Connection,
    scope: GranteeScope,
    now: datetime,
    after: KeysetCursor | None,
    limit: int,
) -> list[tuple[Session, datetime]]:
    """Sessions someone else shared with the caller by a live grant, newest grant first,
    each session once (at the time of its newest grant)."""
    columns = ", ".join(f"s.{c.strip()}" for c in SESSION_COLUMNS.split(","))
    live = "sh.revoked_at IS NULL AND (sh.expires_at IS NULL OR sh.expires_at > :now)"
    # The grants drive the query, each kind through its own index, so the cost follows
    # what was shared with the caller, never the number of sessions.
    grants = (
        "SELECT sh.session_id, sh.created_at FROM shares sh"
        " WHERE sh.grantee_entity_id = :entity AND sh.grantee_kind IN ('USER', 'EXTERNAL')"
        f" AND sh.grantee_user_id = :user AND {live}"
        " UNION ALL SELECT sh.session_id, sh.created_at FROM shares sh"
        f" WHERE sh.grantee_entity_id = :entity AND sh.grantee_kind = 'ENTITY' AND :internal"
        f" AND {live}"
        " UNION ALL SELECT sh.session_id, sh.created_at FROM share_link_visits v"
        " JOIN shares sh ON sh.id = v.share_id"
        f" WHERE v.entity_id = :entity AND v.user_id = :user AND {live}"
    )
    params: dict[str, Any] = {
        "entity": scope.entity_id,
        "user": scope.user_id,
        "internal": int(scope.internal),
        "now": to_micros(now),
        "limit": limit,
    }
    after_clause = ""
    if after is not None:
        after_clause = "AND (g.shared_at, s.id) < (:after_at, :after_id)"
        params.update(after_at=to_micros(after.at), after_id=after.id)
    rows = conn.execute(
        f"SELECT {columns}, g.shared_at FROM"
        f" (SELECT session_id, max(created_at) AS shared_at FROM ({grants}) GROUP BY session_id) g"
        " JOIN sessions s ON s.id = g.session_id"
        f" WHERE NOT (s.entity_id = :entity AND s.owner_id = :user) {after_clause}"
        " ORDER BY g.shared_at DESC, s.id DESC LIMIT :limit",
        params,
    ).fetchall()
    return [(codec.session_from_row(r[:-1]), codec.from_micros(r[-1])) for r in rows]


def _expire_due_shares(
    conn: driver.Connection,
    now: datetime,
    limit: int,
    audit_for: Callable[[Share], AuditEvent],
) -> list[Share]:
    rows = conn.execute(
        f"SELECT {_SHARE_COLUMNS} FROM shares"
        " WHERE expires_at IS NOT NULL AND expires_at <= ? AND revoked_at IS NULL"
        " AND expiry_recorded_at IS NULL ORDER BY expires_at LIMIT ?",
        (to_micros(now), limit),
    ).fetchall()
    expired = [_share_from_row(r) for r in rows]
    for share in expired:
        conn.execute(
            "UPDATE shares SET expiry_recorded_at = ? WHERE id = ?", (to_micros(now), share.id)
        )
        if share.grantee_kind is GranteeKind.ENTITY:
            search.rescope_session(conn, share.session_id)
        _insert_audit(conn, audit_for(share))
    return expired


def _insert_audit(conn: driver.Connection, event: AuditEvent) -> None:
    conn.execute(
        f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.entity_id,
            event.actor_id,
            event.action,
            event.target,
            to_micros(event.at),
            codec.dump_json(event.details),
        ),
    )


def _list_audit(
    conn: driver.Connection,
    entity_id: str,
    audit_filter: AuditFilter,
    after: KeysetCursor | None,
    limit: int,
) -> list[AuditEvent]:
    clauses, params = ["entity_id = ?"], [entity_id]
    if audit_filter.actor_id is not None:
        clauses.append("actor_id = ?")
        params.append(audit_filter.actor_id)
    if audit_filter.action is not None:
        clauses.append("action = ?")
        params.append(audit_filter.action)
    if audit_filter.session_id is not None:
        clauses.append("target = ?")
        params.append(f"session:{audit_filter.session_id}")
    if audit_filter.since is not None:
        clauses.append("at >= ?")
        params.append(to_micros(audit_filter.since))
    if audit_filter.until is not None:
        clauses.append("at < ?")
        params.append(to_micros(audit_filter.until))
    if after is not None:
        clauses.append("(at, id) < (?, ?)")
        params.extend([to_micros(after.at), after.id])
    rows = conn.execute(
        f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE {' AND '.join(clauses)}"
        " ORDER BY at DESC, id DESC LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [
        AuditEvent(
            id=r[0],
            entity_id=r[1],
            actor_id=r[2],
            action=r[3],
            target=r[4],
            at=codec.from_micros(r[5]),
            details=codec.load_json(r[6]),
        )
        for r in rows
    ]


_TEMPLATE_COLUMNS = (
    "id, entity_id, chat_app_id, name, name_key, description, system_prompt, variables, "
    "starter_turns, created_by, created_at, updated_at"
)


def _template_row(t: EntityTemplate) -> tuple:
    return (
        t.id,
        t.entity_id,
        t.chat_app_id,
        t.template.name,
        t.name_key,
        t.template.description,
        t.template.system_prompt,
        codec.dump_json(t.template.variables),
        orjson.dumps(
            [{"role": s.role.value, "content": s.content} for s in t.template.starter_turns]
        ).decode(),
        t.created_by,
        to_micros(t.created_at),
        to_micros(t.updated_at),
    )


def _template_from_row(r: tuple) -> EntityTemplate:
    return EntityTemplate(
        entity_id=r[1],
        chat_app_id=r[2],
        template=SessionTemplate(
            id=r[0],
            name=r[3],
            description=r[5],
            system_prompt=r[6],
            variables=codec.load_json(r[7]),
            starter_turns=tuple(
                StarterTurn(TurnRole(s["role"]), s["content"]) for s in orjson.loads(r[8])
            ),
        ),
        created_by=r[9],
        created_at=codec.from_micros(r[10]),
        updated_at=codec.from_micros(r[11]),
    )


def _create_template(conn: driver.Connection, template: EntityTemplate, audit: AuditEvent) -> None:
    conn.execute(
        f"INSERT INTO templates ({_TEMPLATE_COLUMNS}) VALUES ({', '.join('?' * 12)})",
        _template_row(template),
    )
    _insert_audit(conn, audit)


def _get_template(
    conn: driver.Connection, entity_id: str, template_id: str
) -> EntityTemplate | None:
    row = conn.execute(
        f"SELECT {_TEMPLATE_COLUMNS} FROM templates WHERE id = ? AND entity_id = ?",
        (template_id, entity_id),
    ).fetchone()
    return None if row is None else _template_from_row(row)


def _list_templates(
    conn: driver.Connection, entity_id: str, chat_app_id: str
) -> list[EntityTemplate]:
    rows = conn.execute(
        f"SELECT {_TEMPLATE_COLUMNS} FROM templates WHERE entity_id = ? AND chat_app_id = ?"
        " ORDER BY name_key, id",
        (entity_id, chat_app_id),
    ).fetchall()
    return [_template_from_row(r) for r in rows]


def _update_template(conn: driver.Connection, template: EntityTemplate, audit: AuditEvent) -> bool:
    row = _template_row(template)
    updated = conn.execute(
        "UPDATE templates SET name = ?, name_key = ?, description = ?, system_prompt = ?,"
        " variables = ?, starter_turns = ?, updated_at = ? WHERE id = ? AND entity_id = ?",
        (*row[3:9], row[11], template.id, template.entity_id),
    ).rowcount
    if updated:
        _insert_audit(conn, audit)
    return bool(updated)


def _delete_template(
    conn: driver.Connection, entity_id: str, template_id: str, audit: AuditEvent
) -> bool:
    deleted = conn.execute(
        "DELETE FROM templates WHERE id = ? AND entity_id = ?", (template_id, entity_id)
    ).rowcount
    if deleted:
        _insert_audit(conn, audit)
    return bool(deleted)
