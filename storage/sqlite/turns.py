"""Turn records: a session's turns appended in order, read, listed, graded and rated."""

from __future__ import annotations

from datetime import datetime

import orjson

from ...domain.errors import LimitExceeded, session_not_found
from ...domain.languages import NO_CONFIGURED_LANGUAGES, Languages
from ...domain.models import Feedback, NewTurn, Session, Turn, TurnRole, TurnText, Verification
from . import codec, driver, sessions
from .codec import DAY_US, TURN_COLUMNS, to_micros
from .search import index

_TURN_SELECT = f"SELECT {TURN_COLUMNS} FROM turns"
_TURN_COLUMNS_OF_T = codec.qualified(TURN_COLUMNS, "t")


def append_turn(
    conn: driver.Connection,
    new: NewTurn,
    max_turns: int,
    retention_days: int | None,
    time_block_shift: int,
    languages: Languages = NO_CONFIGURED_LANGUAGES,
) -> tuple[Turn, Session]:
    """The turn numbered next in its session, and the session as it is then; its text is
    indexed in its chat app's `languages`."""
    at = to_micros(new.created_at)
    # With retention, the expiry follows the new last activity (SET reads the old values).
    retention_us = None if retention_days is None else retention_days * DAY_US
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
    session = sessions.require_session(conn, new.session_id)
    tools_json = row[7]
    index.index_turn(
        conn,
        inserted.lastrowid,
        session,
        turn.role.value,
        turn.content,
        tools_json,
        at,
        time_block_shift,
        languages,
    )
    return turn, session


def get_turn(conn: driver.Connection, turn_id: str) -> Turn | None:
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


def list_turns(
    conn: driver.Connection,
    session_id: str,
    after_seq: int | None,
    before_seq: int | None,
    limit: int,
    newest_first: bool,
) -> list[Turn]:
    clauses: list[str] = ["session_id = ?"]
    params: list[str | int] = [session_id]
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


def conversation(
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


def set_verification(
    conn: driver.Connection, turn_id: str, verification: Verification
) -> Turn | None:
    if not conn.execute(
        "UPDATE turns SET verification = ? WHERE id = ?",
        (codec.verification_to_json(verification), turn_id),
    ).rowcount:
        return None
    _touch_session_of_turn(conn, turn_id, verification.verified_at)
    return get_turn(conn, turn_id)


def add_feedback(conn: driver.Connection, turn_id: str, feedback: Feedback) -> Turn | None:
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
    return get_turn(conn, turn_id)
