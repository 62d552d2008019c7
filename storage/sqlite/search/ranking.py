"""Ranking by relevance: rows scored like BM25 without IDF, a session ranked by its best
row, and for a broad query the window of the newest matches that are ranked.

There is no IDF: FTS5's bm25() gets it by reading every matching row of each term in the
whole index, which for a common word at millions of rows costs more than the rest of the
search (and the MongoDB backend scores the same way).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ....domain.expansion import IndexQuery, RowMatch
from ....domain.models import TurnRole
from ....domain.query import SearchFilter, SearchRequest, SessionHit
from .. import driver
from . import phrases
from .hits import Row, attach_rows, sessions_by_id
from .query import Matcher, Stretch, count_matches, hits_sql, turn_rowids
from .scope import LOCAL_MASK, ReadablePart
from .tuning import SearchTuning

K1, B = 1.2, 0.75


def by_relevance(
    conn: driver.Connection, rows: list[Row], request: SearchRequest, query: IndexQuery
) -> list[SessionHit]:
    """The page of sessions of the scored `rows`, best first, each ranked by its best."""
    ranked = ranked_sessions(rows)
    after = request.after
    if after is not None:
        ranked = [r for r in ranked if r > (after.score, after.session_id)]
    page = dict((session_id, score) for score, session_id in ranked[: request.limit])
    sessions = sessions_by_id(conn, list(page))
    found = {
        sid: SessionHit(sessions[sid], score, score, None)
        for sid, score in page.items()
        if sid in sessions
    }
    attach_rows(conn, found, rows, query)
    return list(found.values())


def ranked_sessions(rows: list[Row]) -> list[tuple[float, str]]:
    """(score, session id) of each session of the rows, by its best row, best first."""
    best: dict[str, float] = {}
    for row in rows:
        best[row.session_id] = min(row.score, best.get(row.session_id, math.inf))
    return sorted((score, session_id) for session_id, score in best.items())


@dataclass(frozen=True, slots=True)
class Matched:
    """A row the index found, with how it matches the query and its length in tokens."""

    session_id: str
    match: RowMatch
    length: int
    turn: tuple[str, int, TurnRole] | None  # (id, seq, role); None for a title


def matched_rows(
    conn: driver.Connection,
    m: Matcher,
    search_filter: SearchFilter,
    queries: list[Stretch],
    time_block_shift: int,
) -> dict[int, Matched]:
    """The rows the queries find that match the query, by index rowid. Rows the phrase
    index finds are settled here, from their tokens."""
    params: dict[str, Any] = {}
    if m.phrase is None:
        hits = hits_sql(search_filter, params, queries, time_block_shift, bodies=True)
        found = conn.execute(
            f"SELECT rid, session_id, body, turn_id, seq, role FROM ({hits})", params
        ).fetchall()
    else:
        hits = hits_sql(search_filter, params, queries, time_block_shift, details=True)
        found = conn.execute(
            f"SELECT rid, session_id, NULL, turn_id, seq, role FROM ({hits})", params
        ).fetchall()
        bodies = phrases.bodies(conn, [r[0] for r in found])
        found = [(r[0], r[1], bodies.get(r[0], ""), *r[3:]) for r in found]
    matched = {}
    for rid, session_id, body, turn_id, seq, role in found:
        if m.phrase is not None and not m.phrase.matches(body):
            continue  # the phrase index finds a superset
        words = body.split()
        how = m.query.match(words)
        if how is None:
            continue
        turn = None if turn_id is None or role is None else (turn_id, int(seq or 0), TurnRole(role))
        matched[rid] = Matched(session_id, how, len(words), turn)
    return matched


def scored(matched: Iterable[Matched]) -> list[Row]:
    """The rows with their scores, best first: level and typos (`RowMatch.score`), then
    BM25 without IDF (the row's matches against its length in tokens relative to the
    average of the rows scored together)."""
    matched = list(matched)
    if not matched:
        return []
    average = sum(r.length for r in matched) / len(matched) or 1.0
    rows = []
    for r in matched:
        norm = K1 * (1 - B + B * r.length / average)
        tf = len(r.match.spans)
        rows.append(Row(r.session_id, r.match.score(-tf * (K1 + 1) / (tf + norm)), r.turn))
    rows.sort(key=lambda r: r.score)
    return rows


def scored_rows(
    conn: driver.Connection,
    m: Matcher,
    search_filter: SearchFilter,
    queries: list[Stretch],
    time_block_shift: int,
) -> list[Row]:
    """Each matching row of the queries with its score, best first."""
    return scored(matched_rows(conn, m, search_filter, queries, time_block_shift).values())


def window(
    conn: driver.Connection,
    m: Matcher,
    parts: list[ReadablePart],
    search_filter: SearchFilter,
    turns: tuple[int, int],
    tuning: SearchTuning,
) -> tuple[int, int]:
    """Floors (a turn rowid in `turns`, a session rowid) above which lie about the newest
    `n` to `2n` turns and the newest `n` titles that hold all the words (the relaxed
    query), for a broad query's ranking (n: `tuning.ranked_rows`). Turn and session rowids
    grow with time in every entity."""
    n = tuning.ranked_rows
    lowest, highest = turns
    # A thousand matches are listed at about the cost of one count: the floor is then
    # the n-th newest of them, without probing.
    listed = turn_rowids(
        conn,
        m.relaxed_stretches(parts, search_filter, turns=turns, titles=False),
        tuning.listed_max,
    )
    if listed is not None:
        listed.sort()
        floor = listed[-n] if len(listed) >= n else lowest
        return floor, newest_titles_floor(conn, m, parts, n)

    def turns_above(floor: int) -> int:
        queries = m.relaxed_stretches(parts, search_filter, turns=(floor, highest), titles=False)
        return count_matches(conn, queries, 2 * n + 1)

    (newest,) = conn.execute("SELECT max(rowid) FROM turns").fetchone()
    newest = max(lowest, min(highest, newest or 1))
    # Find a floor with at least n matches above it (moving down by the density seen so
    # far), then halve the gap to the last floor with fewer until at most 2n are above.
    too_high, floor, found = newest + 1, max(lowest, newest - n), 0
    for _ in range(tuning.window_probes):
        found = turns_above(floor)
        if found >= n or floor == lowest:
            break
        span = newest - floor + 1
        too_high, floor = (
            floor,
            max(lowest, newest - (span * 4 if found == 0 else span * 2 * n // found)),
        )
    for _ in range(tuning.window_probes):
        if found <= 2 * n or too_high - floor <= 1:
            break
        middle = (floor + too_high) // 2
        above = turns_above(middle)
        if above >= n:
            floor, found = middle, above
        else:
            too_high = middle
    return floor, newest_titles_floor(conn, m, parts, n)


def newest_titles_floor(
    conn: driver.Connection, m: Matcher, parts: list[ReadablePart], n: int
) -> int:
    """The session rowid from which up the newest `n` matching titles lie."""
    session_rowids: list[int] = []
    for query in m.relaxed_stretches(parts, SearchFilter()):
        if query.high > 0:
            continue
        # A title's rowid is minus its entity's base and session rowid: ascending order
        # is newest first.
        session_rowids += [
            -rowid & LOCAL_MASK
            for (rowid,) in conn.execute(
                f"SELECT rowid FROM {query.table} WHERE {query.table} MATCH ?"
                " AND rowid BETWEEN ? AND ? LIMIT ?",
                (query.match, query.low, query.high, n),
            )
        ]
    session_rowids.sort(reverse=True)
    return session_rowids[n - 1] if len(session_rowids) >= n else 1
