"""Erasure of a person: their sessions deleted, and what they left in others' (turns,
feedback, pins, shares and link visits, their events in the trail) emptied or removed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ...domain.models import (
    ERASED_AUTHOR,
    JSON,
    AuditEvent,
    ErasureCounts,
    Person,
    Session,
    TitleSource,
)
from ...domain.removals import ContributionErasure
from . import codec, driver, sessions
from .audit import redact_audit
from .codec import to_micros
from .search import index


def erase_sessions(
    conn: driver.Connection,
    session_ids: list[str],
    audit_for: Callable[[Session], AuditEvent],
    redact: Callable[[JSON], JSON],
) -> tuple[list[Session], int]:
    erased, redacted = [], 0
    for session_id in session_ids:
        session = sessions.get_session(conn, session_id)
        if session is None:
            continue
        redacted += sessions.delete_session(conn, session.id, audit_for(session), redact) or 0
        erased.append(session)
    return erased, redacted


def erase_contributions(
    conn: driver.Connection, request: ContributionErasure
) -> tuple[ErasureCounts, list[str]]:
    entity_id, user_id, at, batch = request.entity_id, request.user_id, request.at, request.batch
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
        index.unindex_turns(conn, session_entity_id, rowids)
        conn.executemany(
            "UPDATE turns SET content = '', author_id = ?, author_entity_id = ?, parts = NULL,"
            " tool_invocations = NULL, trace = NULL, verification = NULL, feedback = NULL,"
            " insights = NULL, metadata = ? WHERE rowid = ?",
            [(ERASED_AUTHOR, session_entity_id, erased_metadata, r) for r in rowids],
        )
        session = sessions.require_session(conn, session_id)
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
        if said and _retitle_without_erased(conn, session, at, request.opening_words):
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
    counts.audit_events = redact_audit(
        conn,
        "entity_id = ? AND actor_id = ? AND details ->> 'actorEntityId' IS NULL",
        (entity_id, user_id),
        request.redact,
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
    index.index_title(conn, session.id)
    return True
