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
from .newest import attach_best_turns, newest_of_all
from .query import count_matches, matcher, turns_in_time
from .ranking import by_relevance, window
from .scope import readable_parts
from .tuning import SearchTuning
from .walk import newest_by_walking


class Searcher:
    """Answers search requests on a store's readers, with one tuning."""

    def __init__(self, connections: Connections, tuning: SearchTuning) -> None:
        self._connections = connections
        self._tuning = tuning

    async def search(self, request: SearchRequest) -> list[SessionHit]:
        return await self._connections.read(find, request, self._tuning)


def find(conn: driver.Connection, request: SearchRequest, tuning: SearchTuning) -> list[SessionHit]:
    """Newest first: when at most `tuning.broad_matches` rows match in scope, the sessions
    of all of them, ordered; when more (a very common word over a whole entity), the
    readable sessions walked from the most recent, keeping those that match, until the page
    is full (exact either way, and the walk is quick precisely because so much matches).
    By relevance: every matching row scored when at most `tuning.ranked_rows` rows hold all
    the words, else the matches among the newest that many turns and titles that do (the
    best matches among recent conversations); a session ranks by its best row.
    Rows are scored like BM25 without IDF, from the row's marked text."""
    search_filter, after, limit = request.filter, request.after, request.limit
    parts = readable_parts(conn, request.scope)
    m = matcher(conn, request.query, phrase_index=tuning.phrase_index)
    turns = turns_in_time(conn, search_filter, tuning.time_block_shift)
    broad = m.relaxed_stretches(parts, search_filter, turns=turns)
    if request.order is SearchOrder.RELEVANCE:
        floor, title_floor = turns[0], 1
        if count_matches(conn, broad, tuning.ranked_rows + 1) > tuning.ranked_rows:
            floor, title_floor = window(conn, m, parts, search_filter, turns, tuning)
        queries = m.exact_stretches(
            parts, search_filter, turns=(floor, turns[1]), title_floor=title_floor
        )
        return by_relevance(conn, m, queries, request, tuning)
    block_shift = tuning.time_block_shift
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
