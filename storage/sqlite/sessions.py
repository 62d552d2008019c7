"""Session records: a session's row and tags, read, listed, changed and deleted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from ...domain.errors import session_not_found
from ...domain.languages import NO_CONFIGURED_LANGUAGES, Languages
from ...domain.models import (
    JSON,
    AuditEvent,
    OwnerScope,
    Session,
    SessionCursor,
    SessionFilter,
    SessionStatus,
    TitleSource,
)
from . import codec, driver
from .audit import insert_audit, redact_audit
from .codec import SESSION_COLUMNS, opt_micros, to_micros
from .search import index

SESSION_SELECT = f"SELECT {SESSION_COLUMNS} FROM sessions"


def get_session(conn: driver.Connection, session_id: str) -> Session | None:
    row = conn.execute(f"{SESSION_SELECT} WHERE id = ?", (session_id,)).fetchone()
    return None if row is None else codec.session_from_row(row)


def require_session(conn: driver.Connection, session_id: str) -> Session:
    session = get_session(conn, session_id)
    if session is None:
        raise session_not_found(session_id)
    return session


def insert_session(
    conn: driver.Connection, session: Session, languages: Languages = NO_CONFIGURED_LANGUAGES
) -> None:
    """A new session: its row, its tags and its title in the search index (stemmed in its
    chat app's `languages`)."""
    placeholders = ", ".join("?" * len(SESSION_COLUMNS.split(",")))
    conn.execute(
        f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({placeholders})",
        codec.session_row(session),
    )
    conn.executemany(
        "INSERT INTO session_tags (session_id, tag) VALUES (?, ?)",
        [(session.id, tag) for tag in session.tags],
    )
    index.index_title(conn, session.id, languages)


def rename_session(
    conn: driver.Connection,
    session_id: str,
    title: str,
    source: TitleSource,
    at: datetime,
    if_title_version: int | None,
    languages: Languages = NO_CONFIGURED_LANGUAGES,
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
    index.index_title(conn, session_id, languages)
    return get_session(conn, session_id)


def set_archived(
    conn: driver.Connection, session_id: str, archived_at: datetime | None, at: datetime
) -> Session | None:
    conn.execute(
        "UPDATE sessions SET archived_at = ?, updated_at = ? WHERE id = ?",
        (opt_micros(archived_at), to_micros(at), session_id),
    )
    return get_session(conn, session_id)


def set_tags(
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
        insert_audit(conn, audit)
    return get_session(conn, session_id)


def set_status(
    conn: driver.Connection, session_id: str, status: SessionStatus, at: datetime
) -> Session | None:
    conn.execute(
        "UPDATE sessions SET status = ?, updated_at = ? WHERE id = ?",
        (status.value, to_micros(at), session_id),
    )
    return get_session(conn, session_id)


def tag_counts(
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


def list_sessions(
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
        f"{SESSION_SELECT} WHERE {' AND '.join(clauses)}"
        " ORDER BY last_activity_at DESC, id DESC LIMIT ?",
        params,
    ).fetchall()
    return [codec.session_from_row(r) for r in rows]


def delete_session(
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
    redacted = redact_audit(
        conn, "entity_id = ? AND target = ?", (row[0], f"session:{session_id}"), redact
    )
    index.unindex_session(conn, session_id)
    conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
    insert_audit(conn, audit)
    return redacted
