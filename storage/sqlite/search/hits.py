"""The hits of a page: its sessions read whole, and the matching rows (scored, with their
snippets) attached to the session they belong to."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ....domain.models import Session, TurnRole
from ....domain.query import TURNS_PER_HIT, SessionHit, TurnHit
from .. import codec, driver
from ..codec import SESSION_COLUMNS
from .snippets import around_first_mark, marked

_SESSION_COLUMNS_OF_S = ", ".join(f"s.{c.strip()}" for c in SESSION_COLUMNS.split(","))


@dataclass(slots=True)
class Row:
    """A matching row of the index with its score (lower is better)."""

    session_id: str
    score: float
    text: str  # with the matched words marked, or to be marked by `mark`
    turn: tuple[str, int, TurnRole] | None  # (id, seq, role); None for a title
    mark: Callable[[str], str | None] | None = None

    def snippet(self) -> str:
        text = self.text if self.mark is None else self.mark(self.text) or self.text
        return marked(around_first_mark(text))


def attach_rows(found: dict[str, SessionHit], rows: list[Row]) -> None:
    """Each hit's title snippet and best few turns, from `rows` (best first)."""
    for row in rows:
        hit = found.get(row.session_id)
        if hit is None:
            continue
        if row.turn is None:
            hit.title_snippet = row.snippet()
        elif len(hit.turns) < TURNS_PER_HIT:
            turn_id, seq, role = row.turn
            hit.turns.append(TurnHit(turn_id, seq, role, row.snippet(), row.score))


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
