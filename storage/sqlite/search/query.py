"""Query building: from the parsed query, the parts a caller may read and the filter, to
the FTS5 queries over stretches of rowids and the SQL of the rows they match.

A query reads only the stretches of rowids of the entities the caller may read, with the
caller's scope tokens and the in-index filters beside its words; what the index cannot
tell (archived, tags, people, turn times at the edge of a date range) is joined after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ....domain.expansion import IndexQuery, IndexTerm
from ....domain.query import SearchFilter, TermKind
from .. import driver
from ..codec import to_micros
from . import phrases
from .scope import LOCAL_MASK, ReadablePart, scope_token, title_row_id, turn_row_id

MAIN_TABLE = "search_index"
FTS5_TABLES = (MAIN_TABLE, phrases.PAIRS_TABLE)
ALL_TURNS = (1, LOCAL_MASK)


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _term(term: IndexTerm, with_typos: bool = False) -> str:
    match term.kind:
        case TermKind.PHRASE:
            return _quote(" ".join(term.words))
        case TermKind.PREFIX:
            return _quote(term.words[0]) + "*"
    words = term.index_words(with_typos)
    if len(words) == 1:
        return _quote(words[0])
    return "(" + " OR ".join(map(_quote, words)) + ")"


@dataclass(frozen=True, slots=True)
class Stretch:
    """One FTS5 query: `match` on `table` over the rowids from `low` to `high`."""

    match: str
    low: int
    high: int
    table: str = MAIN_TABLE


def text_expression(query: IndexQuery, *, relaxed: bool = False) -> str:
    """The FTS5 expression of the words a step of the query requires. Every term is
    quoted, so nothing a user types can act as an FTS5 operator. `relaxed` asks for a
    superset that FTS5 finds without reading positions: a phrase's words anywhere in the
    row, no excluded phrases."""
    typos = query.with_typos
    if relaxed:
        text = " AND ".join(
            " AND ".join(_quote(w) for w in t.words)
            if t.kind is TermKind.PHRASE
            else _term(t, typos)
            for t in query.required
        )
        excluded = [t for t in query.excluded if t.kind is not TermKind.PHRASE]
    else:
        text = " AND ".join(_term(t, typos) for t in query.required)
        excluded = list(query.excluded)
    for term in excluded:
        text = f"({text}) NOT {_term(term)}"
    return text


def match_expression(
    text: str, part: ReadablePart, search_filter: SearchFilter, table: str = MAIN_TABLE
) -> str:
    """The FTS5 expression for a part: the text on `body`; the part's tokens and the
    in-index filters (chat apps, turn roles) on `scope`. The phrase index has one column
    (its pairs and scope tokens cannot be confused)."""
    on_main = table == MAIN_TABLE
    text_column, scope_column = ("body : ", "scope : ") if on_main else ("", "")
    clauses = [f"{text_column}({text})"]
    if part.tokens is not None:
        clauses.append(f"{scope_column}({' OR '.join(part.tokens)})")
    if search_filter.chat_app_ids:
        apps = [scope_token("a", part.entity_id, a) for a in search_filter.chat_app_ids]
        clauses.append(f"{scope_column}({' OR '.join(apps)})")
    if search_filter.roles:
        roles = [scope_token("r", r.value) for r in search_filter.roles]
        clauses.append(f"{scope_column}({' OR '.join(roles)})")
    return " AND ".join(clauses)


@dataclass(frozen=True, slots=True)
class Matcher:
    """How a query finds its rows: FTS5 expressions for its matching rows (`exact`) and
    for a superset that FTS5 counts cheaply (`relaxed`), each with its table. A query of
    phrases only is answered by the phrase index, whose rows a few phrases (more than two
    tokens, or excluded terms) must settle against the row's tokens (`phrase.matches`).
    `query`: the search's terms with their forms, for scores and snippets."""

    exact: str
    relaxed: str
    table: str
    relaxed_table: str
    phrase: phrases.PhraseQuery | None
    query: IndexQuery

    @property
    def settles(self) -> bool:
        """Whether a row the exact expression finds may still not match."""
        return self.phrase is not None and not self.phrase.exact

    def exact_stretches(
        self, parts: list[ReadablePart], search_filter: SearchFilter, **bounds: Any
    ) -> list[Stretch]:
        return stretches(self.exact, parts, search_filter, table=self.table, **bounds)

    def relaxed_stretches(
        self, parts: list[ReadablePart], search_filter: SearchFilter, **bounds: Any
    ) -> list[Stretch]:
        return stretches(self.relaxed, parts, search_filter, table=self.relaxed_table, **bounds)


def matcher(query: IndexQuery, *, phrase_index: bool) -> Matcher:
    """How to find the rows of a step of the query: through the phrase index when it
    requires only phrases (and `phrase_index` allows it), else through the main index."""
    phrase = phrases.phrase_query(query) if phrase_index else None
    if phrase is not None:
        pairs = phrase.pairs_expression()
        return Matcher(pairs, pairs, phrases.PAIRS_TABLE, phrases.PAIRS_TABLE, phrase, query)
    # Whether a query is broad is decided on its relaxed form, which FTS5 counts without
    # reading positions: a rare phrase of common words must not cost a pass over them.
    return Matcher(
        text_expression(query),
        text_expression(query, relaxed=True),
        MAIN_TABLE,
        MAIN_TABLE,
        None,
        query,
    )


def turns_in_time(
    conn: driver.Connection, search_filter: SearchFilter, time_block_shift: int
) -> tuple[int, int]:
    """The turn rowids (from, to) that can hold a turn of the filter's date range, from
    the turn time blocks (of 2^`time_block_shift` rowids): a search with a date range reads
    only that stretch of each entity's index rows, whatever the order in which turns were
    written."""
    low, high = ALL_TURNS
    if search_filter.since is not None:
        (block,) = conn.execute(
            "SELECT min(block) FROM turn_time_blocks WHERE latest >= ?",
            (to_micros(search_filter.since),),
        ).fetchone()
        if block is None:
            return (1, 0)
        low = block << time_block_shift
    if search_filter.until is not None:
        (block,) = conn.execute(
            "SELECT max(block) FROM turn_time_blocks WHERE earliest < ?",
            (to_micros(search_filter.until),),
        ).fetchone()
        if block is None:
            return (1, 0)
        high = ((block + 1) << time_block_shift) - 1
    return max(low, 1), high


def stretches(
    text: str,
    parts: list[ReadablePart],
    search_filter: SearchFilter,
    *,
    turns: tuple[int, int] = ALL_TURNS,
    title_floor: int = 1,
    titles: bool = True,
    table: str = MAIN_TABLE,
) -> list[Stretch]:
    """The FTS5 queries that find the text in the parts: each part's turns of the turn
    rowids `turns` (from, to) and (unless the filter asks for turn roles, or `titles` is
    False) its titles of sessions from rowid `title_floor` up."""
    found = []
    for part in parts:
        match = match_expression(text, part, search_filter, table)
        found.append(
            Stretch(
                match, turn_row_id(part.base, turns[0]), turn_row_id(part.base, turns[1]), table
            )
        )
        if titles and not search_filter.roles:
            found.append(
                Stretch(
                    match,
                    title_row_id(part.base, LOCAL_MASK),
                    title_row_id(part.base, title_floor),
                    table,
                )
            )
    return found


def session_filters(search_filter: SearchFilter, params: dict[str, Any]) -> list[str]:
    """The filter's conditions on the session `s` that the index does not hold, their
    values added to `params`."""
    clauses = []
    if not search_filter.include_archived:
        clauses.append("s.archived = 0")
    if search_filter.chat_app_ids:
        names = []
        for i, app in enumerate(search_filter.chat_app_ids):
            params[f"app{i}"] = app
            names.append(f":app{i}")
        clauses.append(f"s.chat_app_id IN ({', '.join(names)})")
    if search_filter.tags:
        names = []
        for i, tag in enumerate(search_filter.tags):
            params[f"tag{i}"] = tag
            names.append(f":tag{i}")
        clauses.append(
            "EXISTS (SELECT 1 FROM session_tags st WHERE st.session_id = s.id"
            f" AND st.tag IN ({', '.join(names)}))"
        )
    if search_filter.participants:
        people = []
        for i, person in enumerate(search_filter.participants):
            params.update({f"whose{i}": person.entity_id, f"who{i}": person.user_id})
            people.append(f"(:whose{i}, :who{i})")
        # Participants are users of the session's entity; external_participants name theirs.
        clauses.append(
            "(EXISTS (SELECT 1 FROM json_each(s.participants) p"
            f" WHERE (s.entity_id, p.value) IN (VALUES {', '.join(people)}))"
            " OR EXISTS (SELECT 1 FROM json_each(s.external_participants) x"
            " WHERE (x.value ->> 'entity_id', x.value ->> 'user_id')"
            f" IN (VALUES {', '.join(people)})))"
        )
    return clauses


_NO_ROWS = "SELECT 0 AS rid, NULL AS body LIMIT 0"


def hits_sql(
    search_filter: SearchFilter,
    params: dict[str, Any],
    queries: list[Stretch],
    time_block_shift: int,
    *,
    bodies: bool = False,
    details: bool = False,
) -> str:
    """Matching rows (index rowid, session, indexed tokens or NULL, turn id, seq and
    role, NULL for titles, the session's activity) of the FTS5 queries, after the
    turn-time and session filters. `bodies` adds the row's indexed tokens (only for rows
    that will be scored; only on the main index), and with `details` the turn's id, seq
    and role. Without them, a
    turn's session is found through turn_sessions, which holds rowids only, rather than
    through the turn's own row; with a date range, the turn's own time is read only when
    its block of turn_time_blocks is not wholly inside the range (its first or last)."""
    bounds, title_time = [], []
    if search_filter.since is not None:
        params["since"] = to_micros(search_filter.since)
        bounds.append(("created_at >= :since", "earliest >= :since"))
        title_time.append("s.last_activity_at >= :since")
    if search_filter.until is not None:
        params["until"] = to_micros(search_filter.until)
        bounds.append(("created_at < :until", "latest < :until"))
        title_time.append("s.last_activity_at < :until")
    with_turn_rows = bodies or details
    local = f"f.rid & {LOCAL_MASK}"
    if not bounds:
        turn_time = []
    elif with_turn_rows:
        turn_time = [f"t.{turn}" for turn, _ in bounds]
    else:
        inside = " AND ".join(block for _, block in bounds)
        turn = " AND ".join(turn for turn, _ in bounds)
        turn_time = [
            f"(EXISTS (SELECT 1 FROM turn_time_blocks b WHERE b.block = ({local}) >>"
            f" {time_block_shift} AND {inside})"
            f" OR EXISTS (SELECT 1 FROM turns t WHERE t.rowid = {local} AND {turn}))"
        ]
    session_clauses = session_filters(search_filter, params)
    turn_where = " AND ".join(["f.rid > 0", *turn_time, *session_clauses])
    title_where = " AND ".join(["f.rid < 0", *title_time, *session_clauses])
    columns = f"rowid AS rid, {'body' if bodies else 'NULL'} AS body"
    rows = []
    for i, query in enumerate(queries):
        assert not bodies or query.table == MAIN_TABLE
        params.update({f"m{i}": query.match, f"lo{i}": query.low, f"hi{i}": query.high})
        rows.append(
            f"SELECT {columns} FROM {query.table}"
            f" WHERE {query.table} MATCH :m{i} AND rowid BETWEEN :lo{i} AND :hi{i}"
        )
    titles = (
        ""
        if search_filter.roles
        else " UNION ALL SELECT f.rid, s.id, f.body, NULL, NULL, NULL, s.last_activity_at"
        f" FROM f JOIN sessions s ON s.rowid = (-f.rid) & {LOCAL_MASK} WHERE {title_where}"
    )
    if with_turn_rows:
        turn_columns = "t.id AS turn_id, t.seq AS seq, t.role AS role"
        sessions = f"JOIN turns t ON t.rowid = {local} JOIN sessions s ON s.id = t.session_id"
    else:
        turn_columns = "NULL AS turn_id, NULL AS seq, NULL AS role"
        sessions = (
            f"JOIN turn_sessions ts ON ts.turn_rowid = {local}"
            " JOIN sessions s ON s.rowid = ts.session_rowid"
        )
    return (
        f"WITH f AS MATERIALIZED ({' UNION ALL '.join(rows) or _NO_ROWS})"
        " SELECT f.rid AS rid, s.id AS session_id, f.body AS body,"
        f" {turn_columns}, s.last_activity_at AS activity"
        f" FROM f {sessions} WHERE {turn_where}{titles}"
    )


def count_matches(conn: driver.Connection, queries: list[Stretch], cap: int) -> int:
    """How many rows the queries match, counting no further than `cap`. In ascending
    rowid order: FTS5 walks a long doclist backwards only by decoding it whole, which for
    a common word at millions of rows costs tens of milliseconds."""
    total = 0
    for query in queries:
        if total >= cap:
            break
        (count,) = conn.execute(
            f"SELECT count(*) FROM (SELECT rowid FROM {query.table} WHERE {query.table} MATCH ?"
            " AND rowid BETWEEN ? AND ? LIMIT ?)",
            (query.match, query.low, query.high, cap - total),
        ).fetchone()
        total += int(count)
    return total


def turn_rowids(conn: driver.Connection, queries: list[Stretch], cap: int) -> list[int] | None:
    """The turn rowids of the rows the queries match, or None when there are more than
    `cap` (read in ascending order, for the reason `count_matches` gives)."""
    found: list[int] = []
    for query in queries:
        found += [
            rowid & LOCAL_MASK
            for (rowid,) in conn.execute(
                f"SELECT rowid FROM {query.table} WHERE {query.table} MATCH ?"
                " AND rowid BETWEEN ? AND ? LIMIT ?",
                (query.match, query.low, query.high, cap + 1 - len(found)),
            )
        ]
        if len(found) > cap:
            return None
    return found
