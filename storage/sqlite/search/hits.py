"""The hits of a page: its sessions read whole, and the matching rows (scored, with their
snippets) attached to the session they belong to."""

from __future__ import annotations

import html
from dataclasses import dataclass

from ....domain.expansion import IndexQuery
from ....domain.models import Session, TurnRole
from ....domain.query import TURNS_PER_HIT, SessionHit, TurnHit
from ....domain.snippets import snippet
from .. import codec, driver
from ..codec import SESSION_COLUMNS
from .index import turn_body

_SESSION_COLUMNS_OF_S = ", ".join(f"s.{c.strip()}" for c in SESSION_COLUMNS.split(","))


@dataclass(slots=True)
class Row:
    """A matching row of the index with its score (lower is better)."""

    session_id: str
    score: float
    turn: tuple[str, int, TurnRole] | None  # (id, seq, role); None for a title


def attach_rows(
    conn: driver.Connection, found: dict[str, SessionHit], rows: list[Row], query: IndexQuery
) -> None:
    """Each hit's title snippet and best few turns, from `rows` (best first); snippets
    are made from the text of the turns and titles shown only."""
    shown: list[tuple[SessionHit, Row]] = []
    for row in rows:
        hit = found.get(row.session_id)
        if hit is None:
            continue
        if row.turn is None:
            hit.title_snippet = _snippet(hit.session.title or "", query)
        elif sum(1 for h, _ in shown if h is hit) < TURNS_PER_HIT:
            shown.append((hit, row))
    texts = _turn_texts(conn, [row.turn[0] for _, row in shown if row.turn is not None])
    for hit, row in shown:
        assert row.turn is not None
        turn_id, seq, role = row.turn
        text = _snippet(texts.get(turn_id, ""), query)
        hit.turns.append(TurnHit(turn_id, seq, role, text, row.score))


def _snippet(text: str, query: IndexQuery) -> str:
    # A row the index matched always matches its own text; the fallback is for a turn
    # rewritten between the two reads.
    return snippet(text, query) or html.escape(text[:200])


def _turn_texts(conn: driver.Connection, turn_ids: list[str]) -> dict[str, str]:
    if not turn_ids:
        return {}
    rows = conn.execute(
        "SELECT id, content, tool_invocations FROM turns"
        f" WHERE id IN ({', '.join('?' * len(turn_ids))})",
        turn_ids,
    )
    return {turn_id: turn_body(content, tools) for turn_id, content, tools in rows}


def sessions_by_id(conn: driver.Connection, ids: list[str]) -> dict[str, Session]:
    if not ids:
        return {}
    rows = conn.execute(
        f"SELECT {_SESSION_COLUMNS_OF_S} FROM sessions s"
        f" WHERE s.id IN ({', '.join('?' * len(ids))})",
        ids,
    ).fetchall()
    return {r[0]: codec.session_from_row(r) for r in rows}


def newest_hits(conn: driver.Connection, ranked: list[tuple[str, int]]) -> dict[str, SessionHit]:
    """The hits of (session id, activity), in that order, their sessions read whole."""
    sessions = sessions_by_id(conn, [session_id for session_id, _ in ranked])
    return {
        session_id: SessionHit(sessions[session_id], 0.0, float(activity), None)
        for session_id, activity in ranked
        if session_id in sessions  # deleted in between
    }
