"""Retention: each session's expiry set from its chat app's retention, and the sessions
past it removed, a batch at a time."""

from __future__ import annotations

from typing import Any

from ...domain.models import Session
from ...domain.removals import ExpirySweep
from . import codec, driver, sessions
from .codec import to_micros


def apply_retention_batch(
    conn: driver.Connection, chat_app_id: str, retention_us: int, after_rowid: int, batch: int
) -> tuple[int, int]:
    """The expiry of the chat app's next `batch` sessions after rowid `after_rowid` set from
    their last activity; (the last rowid seen, how many sessions were seen)."""
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


def expired_sessions(conn: driver.Connection, sweep: ExpirySweep) -> list[Session]:
    clauses = ["expires_at IS NOT NULL", "expires_at <= ?"]
    params: list[Any] = [to_micros(sweep.now)]
    for column, value in (("chat_app_id", sweep.chat_app_id), ("entity_id", sweep.entity_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if sweep.after_id is not None:
        clauses.append("id > ?")
        params.append(sweep.after_id)
    params.append(sweep.batch)
    rows = conn.execute(
        f"{sessions.SESSION_SELECT} WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?", params
    ).fetchall()
    return [codec.session_from_row(r) for r in rows]


def remove_expired(conn: driver.Connection, sweep: ExpirySweep) -> list[Session]:
    return [
        s
        for s in expired_sessions(conn, sweep)
        if sessions.delete_session(conn, s.id, sweep.audit_for(s), sweep.redact) is not None
    ]
