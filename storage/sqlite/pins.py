"""Pin records: the sessions each user keeps at hand."""

from __future__ import annotations

from ...domain.models import Pin, Session
from . import codec, driver
from .codec import SESSION_COLUMNS, to_micros

_SESSION_COLUMNS_OF_S = codec.qualified(SESSION_COLUMNS, "s")


def pin(conn: driver.Connection, entity_id: str, pin: Pin) -> None:
    conn.execute(
        "INSERT INTO pins (entity_id, user_id, session_id, pinned_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (entity_id, pin.user_id, pin.session_id, to_micros(pin.pinned_at)),
    )


def unpin(conn: driver.Connection, entity_id: str, user_id: str, session_id: str) -> None:
    conn.execute(
        "DELETE FROM pins WHERE entity_id = ? AND user_id = ? AND session_id = ?",
        (entity_id, user_id, session_id),
    )


def pinned_session_ids(
    conn: driver.Connection, entity_id: str, user_id: str, session_ids: list[str]
) -> set[str]:
    rows = conn.execute(
        "SELECT session_id FROM pins WHERE entity_id = ? AND user_id = ?"
        f" AND session_id IN ({', '.join('?' * len(session_ids))})",
        (entity_id, user_id, *session_ids),
    ).fetchall()
    return {r[0] for r in rows}


def list_pinned(conn: driver.Connection, entity_id: str, user_id: str, limit: int) -> list[Session]:
    rows = conn.execute(
        f"SELECT {_SESSION_COLUMNS_OF_S} FROM pins p JOIN sessions s ON s.id = p.session_id"
        " WHERE p.entity_id = ? AND p.user_id = ? ORDER BY p.pinned_at DESC LIMIT ?",
        (entity_id, user_id, limit),
    ).fetchall()
    return [codec.session_from_row(r) for r in rows]
