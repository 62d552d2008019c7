"""The newest-first walk, for a query so broad (a very common word over a whole entity)
that ordering all its matches would cost too much: the readable sessions are walked from
the most recent, in growing steps, keeping those that hold a match, until the page is
full. It is exact, and quick precisely because so much matches; when matches turn out
too sparse to fill the page, it hands over to the exact path where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from ....domain.query import SearchCursor, SearchFilter, SearchScope, SessionHit
from .. import driver
from ..codec import to_micros
from . import phrases
from .hits import newest_hits
from .query import Matcher, Stretch, count_matches, hits_sql, session_filters
from .scope import session_parts, with_bases
from .tuning import SearchTuning

# Span levels a session can have (migration 0012): 2^47 seconds is four million years.
_SPAN_LEVELS = 48


class _Walked(NamedTuple):
    """A session as the walk sees it: what orders it and finds its rows. Only the sessions
    of the page are read whole (an admin's phrase query walked 3,400 sessions for 21 hits,
    and decoding them all was a quarter of its time)."""

    id: str
    entity_id: str
    activity: int  # last activity, µs


def newest_by_walking(
    conn: driver.Connection,
    m: Matcher,
    scope: SearchScope,
    search_filter: SearchFilter,
    turns: tuple[int, int],
    after: SearchCursor | None,
    limit: int,
    tuning: SearchTuning,
) -> tuple[dict[str, SessionHit], SearchCursor | None]:
    """Sessions that match, newest first, from the walk; and where the walk stopped when it
    gave up before the page was full (None when it is full or the scope exhausted)."""
    matched: list[_Walked] = []
    position = None if after is None else (int(after.score), after.session_id)
    steps = tuning.walk_steps
    sizes = [steps[min(step, len(steps) - 1)] for step in range(tuning.walk_max_steps)]
    visited, exhausted = 0, False
    for step, size in enumerate(sizes):
        if len(matched) >= limit:
            break
        # At the density of matches seen so far, would the rest of the walk fill the page?
        # If not, hand over now rather than after checking thousands of sessions in vain.
        if visited and (limit - len(matched)) * visited / max(len(matched), 0.5) > sum(
            sizes[step:]
        ):
            break
        walked = _readable_sessions(conn, scope, search_filter, position, size)
        if not walked:
            exhausted = True
            break
        matches = _sessions_matching(conn, m, search_filter, turns, walked, tuning)
        for session in walked:
            if matches(session.id):
                matched.append(session)
                if len(matched) == limit:
                    break
        if len(walked) < size:
            exhausted = True
            break
        position = (walked[-1].activity, walked[-1].id)
        visited += len(walked)
    hits = newest_hits(conn, [(w.id, w.activity) for w in matched])
    if exhausted or len(matched) >= limit or position is None:
        return hits, None
    return hits, SearchCursor(float(position[0]), position[1])


def _readable_sessions(
    conn: driver.Connection,
    scope: SearchScope,
    search_filter: SearchFilter,
    position: tuple[int, str] | None,
    limit: int,
) -> list[_Walked]:
    """The next `limit` sessions in scope, most recent activity first, after `position`,
    through the sessions' own activity indexes (the owner's or the entity's), and the
    shared ones beside them. With a date range, the sessions that span its end (begun
    before, active after) come first, found through their span levels; then those last
    active inside it, from where the range ends in the activity index."""
    params: dict[str, Any] = {"limit": limit, "entity": scope.entity_id}
    clauses = session_filters(search_filter, params)
    # A session active last before the window, or begun after it, has no turn inside it.
    if search_filter.since is not None:
        params["since"] = to_micros(search_filter.since)
        clauses.append("s.last_activity_at >= :since")
    if search_filter.until is not None:
        params["until"] = to_micros(search_filter.until)
        clauses.append("s.created_at < :until")
    if position is not None:
        params.update(at=position[0], after_id=position[1])
        clauses.append("(s.last_activity_at, s.id) < (:at, :after_id)")
    own = "s.entity_id = :entity"
    if scope.owner_id is not None:
        params["owner"] = scope.owner_id
        own += " AND s.owner_id = :owner"
    if search_filter.until is None:
        sources = [own]
    else:
        spanning = _spanning_rowids(conn, scope, params["until"])
        sources = [
            f"s.rowid IN ({', '.join(map(str, spanning)) or 'NULL'})"
            " AND s.last_activity_at >= :until",
            f"{own} AND s.last_activity_at < :until",
        ]
    if scope.shared_session_ids:
        names = []
        for i, session_id in enumerate(scope.shared_session_ids):
            params[f"shared{i}"] = session_id
            names.append(f":shared{i}")
        sources.append(f"s.id IN ({', '.join(names)})")
    sessions: dict[str, _Walked] = {}
    for source in sources:
        rows = conn.execute(
            "SELECT s.id, s.entity_id, s.last_activity_at FROM sessions s"
            f" WHERE {' AND '.join([source, *clauses])}"
            " ORDER BY s.last_activity_at DESC, s.id DESC LIMIT :limit",
            params,
        ).fetchall()
        for row in rows:
            sessions[row[0]] = _Walked(*row)
    merged = sorted(sessions.values(), key=lambda x: (x.activity, x.id), reverse=True)
    return merged[:limit]


def _spanning_rowids(conn: driver.Connection, scope: SearchScope, at_us: int) -> list[int]:
    """Rowids of the scope's own sessions begun before `at_us` that may still have been
    active at it: per span level L (lasting less than 2^L seconds), those begun less than
    2^(L+1) seconds before (one level to spare for log2's rounding); the caller checks
    their activity."""
    owner = "" if scope.owner_id is None else " AND owner_id = :owner"
    levels = " UNION ALL ".join(
        f"SELECT rowid FROM sessions WHERE entity_id = :entity AND span_level = {level}"
        f" AND created_at >= :at - {(2 ** (level + 1)) * 1_000_000} AND created_at < :at{owner}"
        for level in range(_SPAN_LEVELS)
    )
    params = {"entity": scope.entity_id, "at": at_us, "owner": scope.owner_id}
    return [r[0] for r in conn.execute(levels, params)]


def _sessions_matching(
    conn: driver.Connection,
    m: Matcher,
    search_filter: SearchFilter,
    turns: tuple[int, int],
    sessions: list[_Walked],
    tuning: SearchTuning,
) -> Callable[[str], bool]:
    """Which of the sessions hold a match (asked in the caller's order, which stops when
    its page is full). Recently active sessions mostly began recently: their rows then lie
    among the last index rows of their entities, which FTS5 reads far faster than it looks
    up one token per session. The sessions that began long ago (resumed conversations),
    which would make that stretch too long, have their tokens named instead: only those,
    as each named token costs a look-up in every index segment (naming all 1,024 of a step
    was half of a slow query's time)."""
    roles_only = SearchFilter(roles=search_filter.roles)
    walked = orjson.dumps([session.id for session in sessions]).decode()
    # A session's first turn has the lowest rowid of its turns; newest beginnings first,
    # and sessions without one (no turn yet: only their title can match) last.
    begun = sorted(
        conn.execute(
            "SELECT s.id, s.entity_id, s.rowid,"
            " (SELECT t.rowid FROM turns t WHERE t.session_id = s.id AND t.seq = 1)"
            " FROM sessions s WHERE s.id IN (SELECT value FROM json_each(:walked))",
            {"walked": walked},
        ).fetchall(),
        key=lambda r: -1 if r[3] is None else r[3],
        reverse=True,
    )
    if not begun:  # deleted since the walk read them
        return lambda _: False
    entities = with_bases(conn, [(e, None) for e in {s.entity_id for s in sessions}])

    def since(k: int) -> tuple[tuple[int, int], int]:
        """The turns and the title floor of a stretch holding the first `k` of `begun`."""
        first_turn = begun[k - 1][3]
        first_session = min(r[2] for r in begun[:k])
        return (max(turns[0], first_turn), turns[1]), first_session

    def fits(k: int) -> bool:
        if begun[k - 1][3] is None:
            return False
        stretch, title_floor = since(k)
        counted = m.relaxed_stretches(entities, roles_only, turns=stretch, title_floor=title_floor)
        return count_matches(conn, counted, tuning.since_rows_max + 1) <= tuning.since_rows_max

    # The most sessions whose stretch fits (the count grows with the stretch).
    low, high = 0, len(begun)
    if not fits(high):
        while high - low > 1 and high - low > len(begun) // tuning.since_split_resolution:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
        high = low
    queries: list[Stretch] = []
    if high:
        stretch, title_floor = since(high)
        queries += m.exact_stretches(entities, roles_only, turns=stretch, title_floor=title_floor)
    if high < len(begun):
        named = [(entity_id, session_id) for session_id, entity_id, _, _ in begun[high:]]
        queries += m.exact_stretches(session_parts(conn, named), roles_only, turns=turns)
    # Rows of other sessions may come along: the caller looks up only its own.
    params: dict[str, Any] = {}
    hits = hits_sql(search_filter, params, queries, tuning.time_block_shift)
    candidates: dict[str, list[int]] = {}
    for session_id, rid in conn.execute(f"SELECT session_id, rid FROM ({hits})", params):
        candidates.setdefault(session_id, []).append(rid)
    if not m.settles:
        return candidates.__contains__
    phrase = m.phrase
    assert phrase is not None
    return lambda session_id: phrases.any_matches(conn, phrase, candidates.get(session_id, []))
