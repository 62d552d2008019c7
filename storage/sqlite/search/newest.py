"""Newest first, exactly: the sessions of every matching row in scope, ordered by their
last activity, and the best turns of a page's sessions."""

from __future__ import annotations

import itertools
from typing import Any

from ....domain.query import SearchCursor, SearchFilter, SessionHit
from .. import driver
from . import phrases
from .hits import attach_rows, newest_hits
from .query import Matcher, Stretch, hits_sql
from .ranking import scored_rows
from .scope import session_parts


def newest_of_all(
    conn: driver.Connection,
    m: Matcher,
    queries: list[Stretch],
    search_filter: SearchFilter,
    after: SearchCursor | None,
    limit: int,
    time_block_shift: int,
) -> dict[str, SessionHit]:
    """The `limit` sessions after `after` with the newest activity among those of the rows
    the queries match."""
    params: dict[str, Any] = {}
    hits = hits_sql(search_filter, params, queries, time_block_shift)
    where = "1"
    if after is not None:
        params.update(after_score=after.score, after_id=after.session_id)
        where = "(activity, session_id) < (:after_score, :after_id)"
    # The hits carry their session's activity: the page is chosen from them, and only the
    # page's sessions are read again.
    order = "ORDER BY activity DESC, session_id DESC"
    if m.settles:
        # Candidates of the phrase index, newest session first: the page is the first
        # `limit` sessions with a row that holds the phrases.
        candidates = conn.execute(
            f"SELECT session_id, activity, rid FROM ({hits}) WHERE {where} {order}", params
        ).fetchall()
        rows = _settled_sessions(conn, m, candidates, limit)
    else:
        params["limit"] = limit
        rows = conn.execute(
            f"SELECT DISTINCT session_id, activity FROM ({hits}) WHERE {where} {order}"
            " LIMIT :limit",
            params,
        ).fetchall()
    return newest_hits(conn, rows)


def _settled_sessions(
    conn: driver.Connection, m: Matcher, candidates: list[tuple], limit: int
) -> list[tuple[str, int]]:
    """The first `limit` (session, activity) of `candidates` (session, activity, index
    rowid, grouped by session) with a row that matches."""
    phrase = m.phrase
    assert phrase is not None
    found: list[tuple[str, int]] = []
    for (session_id, activity), rows in itertools.groupby(candidates, key=lambda r: r[:2]):
        if len(found) == limit:
            break
        if phrases.any_matches(conn, phrase, [r[2] for r in rows]):
            found.append((session_id, activity))
    return found


def attach_best_turns(
    conn: driver.Connection,
    m: Matcher,
    search_filter: SearchFilter,
    turns: tuple[int, int],
    found: dict[str, SessionHit],
    time_block_shift: int,
) -> None:
    """The best few matching turns of each session on the page, its title's snippet and
    its score (its best row's)."""
    queries = m.exact_stretches(
        session_parts(conn, [(h.session.entity_id, h.session.id) for h in found.values()]),
        SearchFilter(roles=search_filter.roles),
        turns=turns,
    )
    rows = scored_rows(conn, m, search_filter, queries, time_block_shift)
    for hit in found.values():
        hit.score = min((r.score for r in rows if r.session_id == hit.session.id), default=0.0)
    attach_rows(conn, found, rows, m.query)
