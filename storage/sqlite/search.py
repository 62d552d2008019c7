"""Full-text search on FTS5, with the caller's scope inside the index.

Every indexed row carries, beside its text, a `scope` column of tokens naming its
entity, owner, chat app, session and turn role. A search matches the text AND the scope
tokens the caller may read, so FTS5 intersects posting lists: the work grows with what
the caller can see, never with the whole corpus. The tokens are digits derived from a
hash, so the porter stemmer leaves them alone and no word of a conversation can collide
with them (the scope column is also queried by name).

Rows of one entity sit in one stretch of rowids: the entity's number (search_entities)
in the bits above ENTITY_SHIFT, the turn's rowid below (a title: minus the entity's
number and the session's rowid). A search over a whole entity bounds the rowid instead of
naming the entity's token, whose posting list would hold most of the index and cost a
seek per matching row. Rows are written in the same transaction as the change they
mirror.
"""

from __future__ import annotations

import hashlib
import html
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from ...domain.models import Session, TurnRole
from ...domain.query import (
    TURNS_PER_HIT,
    SearchCursor,
    SearchFilter,
    SearchOrder,
    SearchQuery,
    SearchScope,
    SessionHit,
    Term,
    TermKind,
    TurnHit,
    searchable_text,
)
from . import codec, driver, phrases
from .codec import SESSION_COLUMNS, to_micros

_SESSION_COLUMNS_OF_S = ", ".join(f"s.{c.strip()}" for c in SESSION_COLUMNS.split(","))

_MARK_OPEN, _MARK_CLOSE = "\x02", "\x03"
TITLE_ROLE = "TITLE"
_HIGHLIGHT = f"highlight(search_index, 0, '{_MARK_OPEN}', '{_MARK_CLOSE}')"
SNIPPET_WORDS = 16
ELLIPSIS = "…"
# BM25's constants. There is no IDF: FTS5's bm25() gets it by reading every matching row of
# each term in the whole index, which for a common word at millions of rows costs more than
# the rest of the search (and the MongoDB backend scores the same way).
K1, B = 1.2, 0.75


def scope_token(kind: str, *parts: str) -> str:
    digest = hashlib.blake2b("\x1f".join((kind, *parts)).encode(), digest_size=8).digest()
    return "1" + str(int.from_bytes(digest, "big"))


def scope_tokens(
    entity_id: str,
    owner_id: str,
    chat_app_id: str,
    session_id: str,
    role: str,
    entity_shared: bool | int = False,
) -> str:
    """The scope column of a row. `entity_shared`: the session has an ENTITY share that
    has not ended (not revoked, expiry not yet recorded), so its rows also carry the
    entity's shared token, which every internal colleague's search includes, instead of
    each colleague's query naming every such session."""
    tokens = [
        scope_token("e", entity_id),
        scope_token("o", entity_id, owner_id),
        scope_token("a", entity_id, chat_app_id),
        scope_token("s", session_id),
        scope_token("r", role),
    ]
    if entity_shared:
        tokens.append(scope_token("x", entity_id))
    return " ".join(tokens)


# The bits of a row's rowid below its entity's number: room for 2^40 turns or sessions.
ENTITY_SHIFT = 40
LOCAL_MASK = (1 << ENTITY_SHIFT) - 1


def entity_base(conn: driver.Connection, entity_id: str, *, create: bool = False) -> int | None:
    """Where the entity's stretch of rowids begins (None: nothing of it indexed yet);
    `create` gives a new entity the next number."""
    if create:
        conn.execute("INSERT OR IGNORE INTO search_entities (entity_id) VALUES (?)", (entity_id,))
    row = conn.execute(
        "SELECT number FROM search_entities WHERE entity_id = ?", (entity_id,)
    ).fetchone()
    return None if row is None else row[0] << ENTITY_SHIFT


def turn_row_id(base: int, turn_rowid: int) -> int:
    return base + turn_rowid


def title_row_id(base: int, session_rowid: int) -> int:
    return -(base + session_rowid)


def shared_with_entity(conn: driver.Connection, entity_id: str, session_id: str) -> bool:
    return bool(_shared_with_entity_of(conn, entity_id, (session_id,)))


def _indexed_facts(conn: driver.Connection, session_id: str) -> tuple | None:
    """(rowid, entity, owner, chat app, title) of the session, or None."""
    return conn.execute(
        "SELECT rowid, entity_id, owner_id, chat_app_id, title FROM sessions WHERE id = ?",
        (session_id,),
    ).fetchone()


def rescope_session(conn: driver.Connection, session_id: str) -> None:
    """Rewrite the scope of the session's rows after an ENTITY share began or ended."""
    row = _indexed_facts(conn, session_id)
    if row is None:
        return
    session_rowid, entity_id, owner_id, chat_app_id, title = row
    base = entity_base(conn, entity_id)
    if base is None:
        return
    shared = shared_with_entity(conn, entity_id, session_id)
    rows = [
        (turn_row_id(base, rowid), role)
        for rowid, role in conn.execute(
            "SELECT rowid, role FROM turns WHERE session_id = ?", (session_id,)
        )
    ]
    if title:
        rows.append((title_row_id(base, session_rowid), TITLE_ROLE))
    phrases.unindex_rows(conn, [rowid for rowid, _ in rows])
    scopes = [
        (scope_tokens(entity_id, owner_id, chat_app_id, session_id, role, shared), rowid)
        for rowid, role in rows
    ]
    conn.executemany("UPDATE search_index SET scope = ? WHERE rowid = ?", scopes)
    phrases.index_rows(conn, [rowid for rowid, _ in rows])


def turn_body(content: str, tool_invocations_json: str | None) -> str:
    """The searchable text of a stored turn (its tool invocations as stored JSON)."""
    calls = orjson.loads(tool_invocations_json) if tool_invocations_json else ()
    return searchable_text(
        content, ((c["name"], c.get("input"), c.get("output"), c.get("error")) for c in calls)
    )


def register_functions(conn: driver.Connection) -> None:
    """SQL access to the same functions, for migrations that backfill the index."""
    conn.create_function("sh_scope", 5, scope_tokens, deterministic=True)
    conn.create_function("sh_scope", 6, scope_tokens, deterministic=True)
    conn.create_function("sh_body", 2, turn_body, deterministic=True)
    conn.create_function("sh_pair_terms", 2, phrases.pair_terms, deterministic=True)


def index_turn(
    conn: driver.Connection,
    rowid: int,
    session: Session,
    role: str,
    content: str,
    tools_json: str | None,
    created_at_us: int,
) -> None:
    base = entity_base(conn, session.entity_id, create=True)
    assert base is not None
    note_turn_time(conn, rowid, created_at_us)
    _insert_row(
        conn,
        turn_row_id(base, rowid),
        turn_body(content, tools_json),
        scope_tokens(
            session.entity_id,
            session.owner_id,
            session.chat_app_id,
            session.id,
            role,
            shared_with_entity(conn, session.entity_id, session.id),
        ),
    )


def _insert_row(conn: driver.Connection, rowid: int, body: str, scope: str) -> None:
    conn.execute(
        "INSERT INTO search_index (rowid, body, scope) VALUES (?, ?, ?)", (rowid, body, scope)
    )
    phrases.index_row(conn, rowid, body, scope)


def _delete_rows(conn: driver.Connection, rowids: list[int]) -> None:
    phrases.unindex_rows(conn, rowids)
    conn.executemany("DELETE FROM search_index WHERE rowid = ?", [(r,) for r in rowids])


def index_title(conn: driver.Connection, session_id: str) -> None:
    """(Re)write the title row of a session from its current title."""
    row = _indexed_facts(conn, session_id)
    if row is None:
        return
    session_rowid, entity_id, owner_id, chat_app_id, title = row
    base = entity_base(conn, entity_id, create=True)
    assert base is not None
    rowid = title_row_id(base, session_rowid)
    _delete_rows(conn, [rowid])
    if title:
        _insert_row(
            conn,
            rowid,
            title,
            scope_tokens(
                entity_id,
                owner_id,
                chat_app_id,
                session_id,
                TITLE_ROLE,
                shared_with_entity(conn, entity_id, session_id),
            ),
        )


def unindex_session(conn: driver.Connection, session_id: str) -> None:
    row = conn.execute(
        "SELECT rowid, entity_id FROM sessions WHERE id = ?", (session_id,)
    ).fetchone()
    if row is None:
        return
    session_rowid, entity_id = row
    base = entity_base(conn, entity_id)
    if base is None:
        return
    rowids = [
        turn_row_id(base, rowid)
        for (rowid,) in conn.execute("SELECT rowid FROM turns WHERE session_id = ?", (session_id,))
    ]
    _delete_rows(conn, [*rowids, title_row_id(base, session_rowid)])


def unindex_turns(conn: driver.Connection, entity_id: str, turn_rowids: list[int]) -> None:
    base = entity_base(conn, entity_id)
    if base is None:
        return
    _delete_rows(conn, [turn_row_id(base, r) for r in turn_rowids])


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _term(term: Term) -> str:
    match term.kind:
        case TermKind.PHRASE:
            return _quote(" ".join(term.words))
        case TermKind.PREFIX:
            return _quote(term.words[0]) + "*"
        case _:
            return _quote(term.words[0])


@dataclass(frozen=True, slots=True)
class ReadablePart:
    """What the caller may read of one entity's stretch of rows: the rows carrying one of
    `tokens`, or every row of the stretch when `tokens` is None."""

    entity_id: str
    base: int
    tokens: tuple[str, ...] | None


MAIN_TABLE = "search_index"
FTS5_TABLES = (MAIN_TABLE, phrases.PAIRS_TABLE)


@dataclass(frozen=True, slots=True)
class Stretch:
    """One FTS5 query: `match` on `table` over the rowids from `low` to `high`."""

    match: str
    low: int
    high: int
    table: str = MAIN_TABLE


def readable_parts(conn: driver.Connection, scope: SearchScope) -> list[ReadablePart]:
    """The caller's own rows (or the whole entity's) and the sessions shared with them, per
    entity. In the caller's entity, the entity's shared token stands for every session
    shared with the whole entity (only internal colleagues are given those)."""
    by_entity: dict[str, list[str]] = {}
    if scope.shared_session_ids:
        rows = conn.execute(
            "SELECT id, entity_id FROM sessions"
            f" WHERE id IN ({', '.join('?' * len(scope.shared_session_ids))})",
            scope.shared_session_ids,
        ).fetchall()
        found = dict(rows)
        for session_id in scope.shared_session_ids:
            if session_id in found:
                by_entity.setdefault(found[session_id], []).append(session_id)
    same_entity = by_entity.pop(scope.entity_id, [])
    own: tuple[str, ...] | None = None
    if scope.owner_id is not None:
        with_entity = _shared_with_entity_of(conn, scope.entity_id, tuple(same_entity))
        own = (
            scope_token("o", scope.entity_id, scope.owner_id),
            *([scope_token("x", scope.entity_id)] if with_entity else []),
            *(scope_token("s", sid) for sid in same_entity if sid not in with_entity),
        )
    parts = [(scope.entity_id, own)]
    parts += [
        (entity_id, tuple(scope_token("s", sid) for sid in ids))
        for entity_id, ids in by_entity.items()
    ]
    return _with_bases(conn, parts)


def _session_parts(conn: driver.Connection, sessions: list[tuple[str, str]]) -> list[ReadablePart]:
    """The rows of exactly these sessions, given as (entity, session id)."""
    by_entity: dict[str, list[str]] = {}
    for entity_id, session_id in sessions:
        by_entity.setdefault(entity_id, []).append(scope_token("s", session_id))
    return _with_bases(conn, [(e, tuple(tokens)) for e, tokens in by_entity.items()])


def _with_bases(
    conn: driver.Connection, parts: list[tuple[str, tuple[str, ...] | None]]
) -> list[ReadablePart]:
    readable = []
    for entity_id, tokens in parts:
        base = entity_base(conn, entity_id)
        if base is not None:  # nothing of that entity is indexed
            readable.append(ReadablePart(entity_id, base, tokens))
    return readable


def _shared_with_entity_of(
    conn: driver.Connection, entity_id: str, session_ids: tuple[str, ...]
) -> set[str]:
    """Which of the sessions have an ENTITY share to `entity_id` that has not ended (not
    revoked, expiry not yet recorded): the rule of the entity's shared token."""
    if not session_ids:
        return set()
    # For a few sessions, their own shares (shares_by_session): the unary + keeps the
    # planner off the grantee index, whose entry for a large entity holds thousands of
    # shares, read on every appended turn. For many, that index is quicker.
    by_session = "+" if len(session_ids) <= 16 else ""
    rows = conn.execute(
        "SELECT DISTINCT session_id FROM shares"
        f" WHERE session_id IN ({', '.join('?' * len(session_ids))})"
        f" AND {by_session}grantee_kind = 'ENTITY' AND {by_session}grantee_entity_id = ?"
        " AND revoked_at IS NULL AND expiry_recorded_at IS NULL",
        (*session_ids, entity_id),
    ).fetchall()
    return {r[0] for r in rows}


def text_expression(query: SearchQuery, *, relaxed: bool = False) -> str:
    """The FTS5 expression of the query's words. Every term is quoted, so nothing a user
    types can act as an FTS5 operator. `relaxed` asks for a superset that FTS5 finds
    without reading positions: a phrase's words anywhere in the row, no excluded phrases."""
    if relaxed:
        text = " AND ".join(
            " AND ".join(_quote(w) for w in t.words) if t.kind is TermKind.PHRASE else _term(t)
            for t in query.included
        )
        excluded = [t for t in query.excluded if t.kind is not TermKind.PHRASE]
    else:
        text = " AND ".join(_term(t) for t in query.included)
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
    tokens, or excluded terms) must settle against the row's text (`phrase.marked`)."""

    exact: str
    relaxed: str
    table: str
    relaxed_table: str
    phrase: phrases.PhraseQuery | None

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


def matcher(query: SearchQuery) -> Matcher:
    text = text_expression(query)
    phrase = phrases.phrase_query(query, text)
    if phrase is not None:
        pairs = phrase.pairs_expression()
        return Matcher(pairs, pairs, phrases.PAIRS_TABLE, phrases.PAIRS_TABLE, phrase)
    # Whether a query is broad is decided on its relaxed form, which FTS5 counts without
    # reading positions: a rare phrase of common words must not cost a pass over them.
    return Matcher(text, text_expression(query, relaxed=True), MAIN_TABLE, MAIN_TABLE, None)


ALL_TURNS = (1, LOCAL_MASK)
# Turn rowids per block of turn_time_blocks: 2^12 = 4,096.
TIME_BLOCK_SHIFT = 12


def note_turn_time(conn: driver.Connection, turn_rowid: int, created_at_us: int) -> None:
    """Keep the earliest and latest turn time of the turn's block of rowids."""
    conn.execute(
        "INSERT INTO turn_time_blocks (block, earliest, latest) VALUES (?, ?, ?)"
        " ON CONFLICT (block) DO UPDATE SET earliest = min(earliest, excluded.earliest),"
        " latest = max(latest, excluded.latest)",
        (turn_rowid >> TIME_BLOCK_SHIFT, created_at_us, created_at_us),
    )


def turns_in_time(conn: driver.Connection, search_filter: SearchFilter) -> tuple[int, int]:
    """The turn rowids (from, to) that can hold a turn of the filter's date range: a
    search with a date range reads only that stretch of each entity's index rows, whatever
    the order in which turns were written."""
    low, high = ALL_TURNS
    if search_filter.since is not None:
        (block,) = conn.execute(
            "SELECT min(block) FROM turn_time_blocks WHERE latest >= ?",
            (to_micros(search_filter.since),),
        ).fetchone()
        if block is None:
            return (1, 0)
        low = block << TIME_BLOCK_SHIFT
    if search_filter.until is not None:
        (block,) = conn.execute(
            "SELECT max(block) FROM turn_time_blocks WHERE earliest < ?",
            (to_micros(search_filter.until),),
        ).fetchone()
        if block is None:
            return (1, 0)
        high = ((block + 1) << TIME_BLOCK_SHIFT) - 1
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


def _session_filters(search_filter: SearchFilter, params: dict[str, Any]) -> list[str]:
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


_NO_ROWS = "SELECT 0 AS rid, NULL AS marked LIMIT 0"


def _hits_sql(
    search_filter: SearchFilter,
    params: dict[str, Any],
    queries: list[Stretch],
    *,
    marks: bool = False,
    details: bool = False,
) -> str:
    """Matching rows (index rowid, session, highlighted text or NULL, turn id, seq and
    role, NULL for titles, the session's activity) of the FTS5 queries, after the
    turn-time and session filters. `marks` adds the row's text with the matched words
    marked (highlight() re-tokenizes the row, so only for rows that will be scored; only
    on the main index), and with `details` the turn's id, seq and role. Without them, a
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
    with_turn_rows = marks or details
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
            f" {TIME_BLOCK_SHIFT} AND {inside})"
            f" OR EXISTS (SELECT 1 FROM turns t WHERE t.rowid = {local} AND {turn}))"
        ]
    session_clauses = _session_filters(search_filter, params)
    turn_where = " AND ".join(["f.rid > 0", *turn_time, *session_clauses])
    title_where = " AND ".join(["f.rid < 0", *title_time, *session_clauses])
    columns = f"rowid AS rid, {_HIGHLIGHT if marks else 'NULL'} AS marked"
    rows = []
    for i, query in enumerate(queries):
        assert not marks or query.table == MAIN_TABLE
        params.update({f"m{i}": query.match, f"lo{i}": query.low, f"hi{i}": query.high})
        rows.append(
            f"SELECT {columns} FROM {query.table}"
            f" WHERE {query.table} MATCH :m{i} AND rowid BETWEEN :lo{i} AND :hi{i}"
        )
    titles = (
        ""
        if search_filter.roles
        else " UNION ALL SELECT f.rid, s.id, f.marked, NULL, NULL, NULL, s.last_activity_at"
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
        " SELECT f.rid AS rid, s.id AS session_id, f.marked AS marked,"
        f" {turn_columns}, s.last_activity_at AS activity"
        f" FROM f {sessions} WHERE {turn_where}{titles}"
    )


# Newest first: up to this many matching rows in scope, the page comes from all of them;
# beyond, from walking the newest readable sessions (see `search`).
BROAD_MATCHES = 10_000
# By relevance: up to this many matching rows are all scored; beyond, the newest this many.
RANKED_ROWS = 200
# At most this many counts to place the window of a broad query's ranking, when more
# than _LISTED_MAX rows match (fewer are listed instead: listing costs per row, wasted
# when there are more).
_WINDOW_PROBES = 12
_LISTED_MAX = 1_000
# Sessions checked per step when walking the newest sessions for a broad query.
_WALK_STEPS = (64, 256, 1024)
# After this many steps (about 4,400 sessions) the walk hands over to the exact path.
_WALK_MAX_STEPS = 6


def search(
    conn: driver.Connection,
    query: SearchQuery,
    scope: SearchScope,
    search_filter: SearchFilter,
    order: SearchOrder,
    after: SearchCursor | None,
    limit: int,
) -> list[SessionHit]:
    """Newest first: when at most BROAD_MATCHES rows match in scope, the sessions of all
    of them, ordered; when more (a very common word over a whole entity), the readable
    sessions walked from the most recent, keeping those that match, until the page is full
    (exact either way, and the walk is quick precisely because so much matches).
    By relevance: every matching row scored when at most RANKED_ROWS rows hold all the words,
    else the matches among the newest RANKED_ROWS turns and RANKED_ROWS titles that do (the
    best matches among recent conversations); a session ranks by its best row.
    Rows are scored like BM25 without IDF, from the row's marked text."""
    parts = readable_parts(conn, scope)
    m = matcher(query)
    turns = turns_in_time(conn, search_filter)
    broad = m.relaxed_stretches(parts, search_filter, turns=turns)
    if order is SearchOrder.RELEVANCE:
        floor, title_floor = turns[0], 1
        if _count(conn, broad, RANKED_ROWS + 1) > RANKED_ROWS:
            floor, title_floor = _window(conn, m, parts, search_filter, turns, RANKED_ROWS)
        queries = m.exact_stretches(
            parts, search_filter, turns=(floor, turns[1]), title_floor=title_floor
        )
        return _by_relevance(conn, m, queries, search_filter, after, limit)
    if _count(conn, broad, BROAD_MATCHES + 1) > BROAD_MATCHES:
        found, resume = _newest_by_walking(conn, m, scope, search_filter, turns, after, limit)
        if resume is not None:
            # The walk met too few matches to fill the page (a rare phrase of common
            # words): the rest of it from all the matches, past where the walk stopped.
            queries = m.exact_stretches(parts, search_filter, turns=turns)
            found |= _newest_of_all(conn, m, queries, search_filter, resume, limit - len(found))
    else:
        queries = m.exact_stretches(parts, search_filter, turns=turns)
        found = _newest_of_all(conn, m, queries, search_filter, after, limit)
    if found:
        _attach_best_turns(conn, m, search_filter, turns, found)
    return list(found.values())


def _count(conn: driver.Connection, queries: list[Stretch], cap: int) -> int:
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


def _window(
    conn: driver.Connection,
    m: Matcher,
    parts: list[ReadablePart],
    search_filter: SearchFilter,
    turns: tuple[int, int],
    n: int,
) -> tuple[int, int]:
    """Floors (a turn rowid in `turns`, a session rowid) above which lie about the newest
    `n` to `2n` turns and the newest `n` titles that hold all the words (the relaxed
    query), for a broad query's ranking. Turn and session rowids grow with time in every
    entity."""
    lowest, highest = turns
    # A thousand matches are listed at about the cost of one count: the floor is then
    # the n-th newest of them, without probing.
    listed = _turn_rowids(
        conn, m.relaxed_stretches(parts, search_filter, turns=turns, titles=False), _LISTED_MAX
    )
    if listed is not None:
        listed.sort()
        floor = listed[-n] if len(listed) >= n else lowest
        return floor, _newest_titles_floor(conn, m, parts, n)

    def turns_above(floor: int) -> int:
        queries = m.relaxed_stretches(parts, search_filter, turns=(floor, highest), titles=False)
        return _count(conn, queries, 2 * n + 1)

    (newest,) = conn.execute("SELECT max(rowid) FROM turns").fetchone()
    newest = max(lowest, min(highest, newest or 1))
    # Find a floor with at least n matches above it (moving down by the density seen so
    # far), then halve the gap to the last floor with fewer until at most 2n are above.
    too_high, floor, found = newest + 1, max(lowest, newest - n), 0
    for _ in range(_WINDOW_PROBES):
        found = turns_above(floor)
        if found >= n or floor == lowest:
            break
        span = newest - floor + 1
        too_high, floor = (
            floor,
            max(lowest, newest - (span * 4 if found == 0 else span * 2 * n // found)),
        )
    for _ in range(_WINDOW_PROBES):
        if found <= 2 * n or too_high - floor <= 1:
            break
        middle = (floor + too_high) // 2
        above = turns_above(middle)
        if above >= n:
            floor, found = middle, above
        else:
            too_high = middle
    return floor, _newest_titles_floor(conn, m, parts, n)


def _turn_rowids(conn: driver.Connection, queries: list[Stretch], cap: int) -> list[int] | None:
    """The turn rowids of the rows the queries match, or None when there are more than
    `cap` (read in ascending order, for the reason `_count` gives)."""
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


def _newest_titles_floor(
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


def _by_relevance(
    conn: driver.Connection,
    m: Matcher,
    queries: list[Stretch],
    search_filter: SearchFilter,
    after: SearchCursor | None,
    limit: int,
) -> list[SessionHit]:
    rows = _scored_hits(conn, m, search_filter, queries)
    best: dict[str, float] = {}
    for row in rows:
        best[row.session_id] = min(row.score, best.get(row.session_id, 0.0))
    ranked = sorted((score, session_id) for session_id, score in best.items())
    if after is not None:
        ranked = [r for r in ranked if r > (after.score, after.session_id)]
    page = dict((session_id, score) for score, session_id in ranked[:limit])
    sessions = _sessions_by_id(conn, list(page))
    found = {
        sid: SessionHit(sessions[sid], score, score, None)
        for sid, score in page.items()
        if sid in sessions
    }
    _attach_rows(found, rows)
    return list(found.values())


def _newest_of_all(
    conn: driver.Connection,
    m: Matcher,
    queries: list[Stretch],
    search_filter: SearchFilter,
    after: SearchCursor | None,
    limit: int,
) -> dict[str, SessionHit]:
    params: dict[str, Any] = {}
    hits = _hits_sql(search_filter, params, queries)
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
    return _newest_hits(conn, rows)


def _newest_hits(conn: driver.Connection, ranked: list[tuple[str, int]]) -> dict[str, SessionHit]:
    """The hits of (session id, activity), in that order, their sessions read whole."""
    sessions = _sessions_by_id(conn, [session_id for session_id, _ in ranked])
    return {
        session_id: SessionHit(sessions[session_id], 0.0, float(activity), None)
        for session_id, activity in ranked
        if session_id in sessions  # deleted in between
    }


def _settled_sessions(
    conn: driver.Connection, m: Matcher, candidates: list[tuple], limit: int
) -> list[tuple[str, int]]:
    """The first `limit` (session, activity) of `candidates` (session, activity, index
    rowid, grouped by session) with a row that matches."""
    found: list[tuple[str, int]] = []
    for (session_id, activity), rows in itertools.groupby(candidates, key=lambda r: r[:2]):
        if len(found) == limit:
            break
        if _any_matches(conn, m, [r[2] for r in rows]):
            found.append((session_id, activity))
    return found


def _any_matches(conn: driver.Connection, m: Matcher, rowids: list[int]) -> bool:
    assert m.phrase is not None
    return any(m.phrase.matches(body) is not None for body in _bodies(conn, rowids).values())


def _bodies(conn: driver.Connection, rowids: list[int]) -> dict[int, str]:
    """The indexed text of search_index rows."""
    return {rowid: body for rowid, body, _ in phrases.main_index_rows(conn, rowids)}


def _sessions_by_id(conn: driver.Connection, ids: list[str]) -> dict[str, Session]:
    if not ids:
        return {}
    rows = conn.execute(
        f"SELECT {_SESSION_COLUMNS_OF_S} FROM sessions s"
        f" WHERE s.id IN ({', '.join('?' * len(ids))})",
        ids,
    ).fetchall()
    return {r[0]: codec.session_from_row(r) for r in rows}


class _Walked(NamedTuple):
    """A session as the walk sees it: what orders it and finds its rows. Only the sessions
    of the page are read whole (an admin's phrase query walked 3,400 sessions for 21 hits,
    and decoding them all was a quarter of its time)."""

    id: str
    entity_id: str
    activity: int  # last activity, µs


def _newest_by_walking(
    conn: driver.Connection,
    m: Matcher,
    scope: SearchScope,
    search_filter: SearchFilter,
    turns: tuple[int, int],
    after: SearchCursor | None,
    limit: int,
) -> tuple[dict[str, SessionHit], SearchCursor | None]:
    """Sessions that match, newest first, from the walk; and where the walk stopped when it
    gave up before the page was full (None when it is full or the scope exhausted)."""
    matched, resume = _walk(conn, m, scope, search_filter, turns, after, limit)
    return _newest_hits(conn, [(w.id, w.activity) for w in matched]), resume


def _walk(
    conn: driver.Connection,
    m: Matcher,
    scope: SearchScope,
    search_filter: SearchFilter,
    turns: tuple[int, int],
    after: SearchCursor | None,
    limit: int,
) -> tuple[list[_Walked], SearchCursor | None]:
    matched: list[_Walked] = []
    position = None if after is None else (int(after.score), after.session_id)
    sizes = [_WALK_STEPS[min(step, len(_WALK_STEPS) - 1)] for step in range(_WALK_MAX_STEPS)]
    visited = 0
    for step, size in enumerate(sizes):
        if len(matched) >= limit:
            return matched, None
        # At the density of matches seen so far, would the rest of the walk fill the page?
        # If not, hand over now rather than after checking thousands of sessions in vain.
        if visited and (limit - len(matched)) * visited / max(len(matched), 0.5) > sum(
            sizes[step:]
        ):
            break
        walked = _readable_sessions(conn, scope, search_filter, position, size)
        if not walked:
            return matched, None
        matches = _sessions_matching(conn, m, search_filter, turns, walked)
        for session in walked:
            if matches(session.id):
                matched.append(session)
                if len(matched) == limit:
                    break
        position = (walked[-1].activity, walked[-1].id)
        visited += len(walked)
        if len(walked) < size:
            return matched, None
    if len(matched) >= limit or position is None:
        return matched, None
    return matched, SearchCursor(float(position[0]), position[1])


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
    clauses = _session_filters(search_filter, params)
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


# Span levels a session can have (migration 0012): 2^47 seconds is four million years.
_SPAN_LEVELS = 48


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


# A walk step reads the index rows written since its sessions' first turns when there are
# at most this many (and names the tokens of the sessions begun before such a stretch).
_SINCE_ROWS_MAX = 2_000
# The split between the stretch and the named sessions is found to within 1/this of the
# walked sessions (a count per halving: 4 or 5 of them rather than 10 at 1,024 sessions).
_SINCE_SPLIT_RESOLUTION = 16


def _sessions_matching(
    conn: driver.Connection,
    m: Matcher,
    search_filter: SearchFilter,
    turns: tuple[int, int],
    sessions: list[_Walked],
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
    entities = _with_bases(conn, [(e, None) for e in {s.entity_id for s in sessions}])

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
        return _count(conn, counted, _SINCE_ROWS_MAX + 1) <= _SINCE_ROWS_MAX

    # The most sessions whose stretch fits (the count grows with the stretch).
    low, high = 0, len(begun)
    if not fits(high):
        while high - low > 1 and high - low > len(begun) // _SINCE_SPLIT_RESOLUTION:
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
        queries += m.exact_stretches(_session_parts(conn, named), roles_only, turns=turns)
    # Rows of other sessions may come along: the caller looks up only its own.
    params: dict[str, Any] = {}
    hits = _hits_sql(search_filter, params, queries)
    candidates: dict[str, list[int]] = {}
    for session_id, rid in conn.execute(f"SELECT session_id, rid FROM ({hits})", params):
        candidates.setdefault(session_id, []).append(rid)
    if not m.settles:
        return candidates.__contains__
    return lambda session_id: _any_matches(conn, m, candidates.get(session_id, []))


def _attach_best_turns(
    conn: driver.Connection,
    m: Matcher,
    search_filter: SearchFilter,
    turns: tuple[int, int],
    found: dict[str, SessionHit],
) -> None:
    """The best few matching turns of each session on the page, its title's snippet and
    its score (its best row's)."""
    queries = m.exact_stretches(
        _session_parts(conn, [(h.session.entity_id, h.session.id) for h in found.values()]),
        SearchFilter(roles=search_filter.roles),
        turns=turns,
    )
    rows = _scored_hits(conn, m, search_filter, queries)
    for hit in found.values():
        hit.score = min((r.score for r in rows if r.session_id == hit.session.id), default=0.0)
    _attach_rows(found, rows)


@dataclass(slots=True)
class _Row:
    session_id: str
    score: float
    text: str  # with the matched words marked, or to be marked by `mark`
    turn: tuple[str, int, TurnRole] | None  # (id, seq, role); None for a title
    mark: Callable[[str], str | None] | None = None

    def snippet(self) -> str:
        text = self.text if self.mark is None else self.mark(self.text) or self.text
        return marked(_around_first_mark(text))


def _scored_hits(
    conn: driver.Connection, m: Matcher, search_filter: SearchFilter, queries: list[Stretch]
) -> list[_Row]:
    """Each matching row with its score, best first: BM25 without IDF (the row's marked
    words against its length relative to the average of the rows scored together). Rows
    of the phrase index are marked (and settled) from their text."""
    params: dict[str, Any] = {}
    # (session, text, marks in it, its length once marked, turn id, seq, role)
    fetched: list[tuple] = []
    if m.phrase is None:
        hits = _hits_sql(search_filter, params, queries, marks=True)
        for session_id, text, turn_id, seq, role in conn.execute(
            f"SELECT session_id, marked, turn_id, seq, role FROM ({hits})", params
        ):
            tf = text.count(_MARK_OPEN)
            fetched.append((session_id, text, tf, len(text), turn_id, seq, role))
    else:
        # The row's matches counted from its tokens; its text is marked only if shown.
        hits = _hits_sql(search_filter, params, queries, details=True)
        found = conn.execute(
            f"SELECT rid, session_id, turn_id, seq, role FROM ({hits})", params
        ).fetchall()
        bodies = _bodies(conn, [r[0] for r in found])
        for rid, session_id, turn_id, seq, role in found:
            body = bodies.get(rid, "")
            tf = m.phrase.matches(body)
            if tf is not None:
                fetched.append((session_id, body, tf, len(body) + 2 * tf, turn_id, seq, role))
    if not fetched:
        return []
    average = sum(r[3] for r in fetched) / len(fetched) or 1.0
    mark = None if m.phrase is None else m.phrase.marked
    scored = []
    for session_id, text, tf, length, turn_id, seq, role in fetched:
        norm = K1 * (1 - B + B * length / average)
        score = -tf * (K1 + 1) / (tf + norm)
        turn = None if turn_id is None else (turn_id, int(seq or 0), TurnRole(role))
        scored.append(_Row(session_id, score, text, turn, mark))
    scored.sort(key=lambda r: r.score)
    return scored


def _attach_rows(found: dict[str, SessionHit], rows: list[_Row]) -> None:
    for row in rows:
        hit = found.get(row.session_id)
        if hit is None:
            continue
        if row.turn is None:
            hit.title_snippet = row.snippet()
        elif len(hit.turns) < TURNS_PER_HIT:
            turn_id, seq, role = row.turn
            hit.turns.append(TurnHit(turn_id, seq, role, row.snippet(), row.score))


def _around_first_mark(text: str) -> str:
    """About SNIPPET_WORDS words of `text` from just before its first marked word."""
    words = text.split(" ")
    first = next((i for i, w in enumerate(words) if _MARK_OPEN in w), 0)
    start = max(0, first - 2)
    end = min(len(words), start + SNIPPET_WORDS)
    cut = " ".join(words[start:end])
    return (ELLIPSIS if start else "") + cut + (ELLIPSIS if end < len(words) else "")


def marked(snippet: str) -> str:
    """HTML-safe text with the matched words in <mark>."""
    return html.escape(snippet).replace(_MARK_OPEN, "<mark>").replace(_MARK_CLOSE, "</mark>")
