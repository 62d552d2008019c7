"""Full-text search on FTS5, with the caller's scope inside the index: the way a request
is answered, by relevance or newest first, narrow or broad.

The parts: scope.py (who may read which rows of the index), index.py (what is written to
it: the tokens of domain/words.py), vocabulary.py (the words it holds and their stems per
language), phrases.py (the phrase index), query.py (the FTS5 queries and the SQL around
them), ranking.py (relevance), newest.py (newest first from every match), walk.py (newest
first by walking the newest sessions), hits.py (what a hit shows), tuning.py (the bounds
between the ways).
"""

from __future__ import annotations

from ....domain.query import SearchOrder, SearchRequest, SessionHit
from .. import driver
from ..connections import Connections
from .hits import Row
from .newest import attach_best_turns, newest_of_all
from .query import count_matches, matcher, turns_in_time
from .ranking import Matched, by_relevance, matched_rows, ranked_sessions, scored, window
from .scope import readable_parts
from .tuning import SearchTuning
from .vocabulary import index_query
from .walk import newest_by_walking


class Searcher:
    """Answers search requests on a store's readers, with one tuning."""

    def __init__(self, connections: Connections, tuning: SearchTuning) -> None:
        self._connections = connections
        self._tuning = tuning

    async def search(self, request: SearchRequest) -> list[SessionHit]:
        return await self._connections.read(find, request, self._tuning)


def find(conn: driver.Connection, request: SearchRequest, tuning: SearchTuning) -> list[SessionHit]:
    """The query's words are first expanded through the vocabulary (forms of their stems,
    near spellings, how common each is), which gives the ladder of steps
    (`IndexQuery.levels`: every word, with typos, without the most common word, ...).

    Newest first, from the first step that finds anything: when at most
    `tuning.broad_matches` rows match in scope, the sessions of all of them, ordered; when
    more (a very common word over a whole entity), the readable sessions walked from the
    most recent, keeping those that match, until the page is full (exact either way, and
    the walk is quick precisely because so much matches).
    By relevance, step after step until the page is full: every matching row scored when
    at most `tuning.ranked_rows` rows hold the step's words, else the matches among the
    newest that many turns and titles (the best matches among recent conversations, and
    the last step); a session ranks by its best row. Rows are scored by level, typos, then
    like BM25 without IDF."""
    search_filter, after, limit = request.filter, request.after, request.limit
    parts = readable_parts(conn, request.scope)
    query = index_query(conn, request.query)
    turns = turns_in_time(conn, search_filter, tuning.time_block_shift)
    if request.order is SearchOrder.RELEVANCE:
        matched: dict[int, Matched] = {}
        rows: list[Row] = []
        for step in query.levels():
            m = matcher(step, phrase_index=tuning.phrase_index)
            broad = m.relaxed_stretches(parts, search_filter, turns=turns)
            floor, title_floor, windowed = turns[0], 1, False
            if count_matches(conn, broad, tuning.ranked_rows + 1) > tuning.ranked_rows:
                floor, title_floor = window(conn, m, parts, search_filter, turns, tuning)
                windowed = True
            queries = m.exact_stretches(
                parts, search_filter, turns=(floor, turns[1]), title_floor=title_floor
            )
            matched.update(matched_rows(conn, m, search_filter, queries, tuning.time_block_shift))
            rows = scored(matched.values())
            ranked = ranked_sessions(rows)
            if after is not None:
                ranked = [r for r in ranked if r > (after.score, after.session_id)]
            if windowed or len(ranked) >= limit:
                break
        return by_relevance(conn, rows, request, query)
    steps = (matcher(step, phrase_index=tuning.phrase_index) for step in query.levels())
    first = next(
        (
            m
            for m in steps
            if count_matches(conn, m.exact_stretches(parts, search_filter, turns=turns), 1)
        ),
        None,
    )
    if first is None:
        return []  # no step finds anything
    m = first
    block_shift = tuning.time_block_shift
    broad = m.relaxed_stretches(parts, search_filter, turns=turns)
    if count_matches(conn, broad, tuning.broad_matches + 1) > tuning.broad_matches:
        found, resume = newest_by_walking(
            conn, m, request.scope, search_filter, turns, after, limit, tuning
        )
        if resume is not None:
            # The walk met too few matches to fill the page (a rare phrase of common
            # words): the rest of it from all the matches, past where the walk stopped.
            queries = m.exact_stretches(parts, search_filter, turns=turns)
            found |= newest_of_all(
                conn, m, queries, search_filter, resume, limit - len(found), block_shift
            )
    else:
        queries = m.exact_stretches(parts, search_filter, turns=turns)
        found = newest_of_all(conn, m, queries, search_filter, after, limit, block_shift)
    if found:
        attach_best_turns(conn, m, search_filter, turns, found, block_shift)
    return list(found.values())
