"""Full-text search on FTS5, with the caller's scope inside the index.

Every indexed row carries, beside its text, a `scope` column of tokens naming its
entity, owner, chat app, session and turn role. A search matches the text AND the scope
tokens the caller may read, so FTS5 intersects posting lists: the work grows with what
the caller can see, never with the whole corpus. The tokens are digits derived from a
hash, so the porter stemmer leaves them alone and no word of a conversation can collide
with them (the scope column is also queried by name).

Rows: a turn is indexed under its own rowid; a session's title under minus the
session's rowid. Both are written in the same transaction as the change they mirror.
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

import orjson

from ...domain.models import Session, TurnRole
from ...domain.query import (
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
from . import codec, driver
from .codec import SESSION_COLUMNS, to_micros

_SESSION_COLUMNS_OF_S = ", ".join(f"s.{c.strip()}" for c in SESSION_COLUMNS.split(","))

_MARK_OPEN, _MARK_CLOSE = "\x02", "\x03"
TURNS_PER_HIT = 3
TITLE_ROLE = "TITLE"
_SNIPPET = f"snippet(search_index, 0, '{_MARK_OPEN}', '{_MARK_CLOSE}', '…', 16)"


def scope_token(kind: str, *parts: str) -> str:
    digest = hashlib.blake2b("\x1f".join((kind, *parts)).encode(), digest_size=8).digest()
    return "1" + str(int.from_bytes(digest, "big"))


def scope_tokens(
    entity_id: str, owner_id: str, chat_app_id: str, session_id: str, role: str
) -> str:
    return " ".join(
        (
            scope_token("e", entity_id),
            scope_token("o", entity_id, owner_id),
            scope_token("a", entity_id, chat_app_id),
            scope_token("s", session_id),
            scope_token("r", role),
        )
    )


def turn_body(content: str, tool_invocations_json: str | None) -> str:
    """The searchable text of a stored turn (its tool invocations as stored JSON)."""
    calls = orjson.loads(tool_invocations_json) if tool_invocations_json else ()
    return searchable_text(
        content, ((c["name"], c.get("input"), c.get("output"), c.get("error")) for c in calls)
    )


def register_functions(conn: driver.Connection) -> None:
    """SQL access to the same functions, for migrations that backfill the index."""
    conn.create_function("sh_scope", 5, scope_tokens, deterministic=True)
    conn.create_function("sh_body", 2, turn_body, deterministic=True)


def index_turn(
    conn: driver.Connection,
    rowid: int,
    session: Session,
    role: str,
    content: str,
    tools_json: str | None,
) -> None:
    conn.execute(
        "INSERT INTO search_index (rowid, body, scope) VALUES (?, ?, ?)",
        (
            rowid,
            turn_body(content, tools_json),
            scope_tokens(
                session.entity_id, session.owner_id, session.chat_app_id, session.id, role
            ),
        ),
    )


def index_title(conn: driver.Connection, session_id: str) -> None:
    """(Re)write the title row of a session from its current title."""
    row = conn.execute(
        "SELECT rowid, entity_id, owner_id, chat_app_id, title FROM sessions WHERE id = ?",
        (session_id,),
    ).fetchone()
    if row is None:
        return
    rowid, entity_id, owner_id, chat_app_id, title = row
    conn.execute("DELETE FROM search_index WHERE rowid = ?", (-rowid,))
    if title:
        conn.execute(
            "INSERT INTO search_index (rowid, body, scope) VALUES (?, ?, ?)",
            (-rowid, title, scope_tokens(entity_id, owner_id, chat_app_id, session_id, TITLE_ROLE)),
        )


def unindex_session(conn: driver.Connection, session_id: str) -> None:
    conn.execute(
        "DELETE FROM search_index WHERE rowid IN"
        " (SELECT rowid FROM turns WHERE session_id = ?"
        "  UNION ALL SELECT -rowid FROM sessions WHERE id = ?)",
        (session_id, session_id),
    )


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


def readable_tokens(scope: SearchScope) -> list[str]:
    own = (
        scope_token("o", scope.entity_id, scope.owner_id)
        if scope.owner_id is not None
        else scope_token("e", scope.entity_id)
    )
    return [own, *(scope_token("s", sid) for sid in scope.shared_session_ids)]


def match_expression(
    query: SearchQuery, readable: list[str], search_filter: SearchFilter, entity_id: str
) -> str:
    """The FTS5 expression: text terms on `body`, the reader's scope and the in-index
    filters (chat apps, turn roles) on `scope`. Every term is quoted, so nothing a user
    types can act as an FTS5 operator."""
    text = " AND ".join(_term(t) for t in query.included)
    for term in query.excluded:
        text = f"({text}) NOT {_term(term)}"
    parts = [f"body : ({text})", f"scope : ({' OR '.join(readable)})"]
    if search_filter.chat_app_ids:
        apps = [scope_token("a", entity_id, a) for a in search_filter.chat_app_ids]
        # Sessions shared from other entities carry their own entity's app tokens: let
        # them through here; the session filter on chat_app_id decides.
        apps += [t for t in readable[1:]]
        parts.append(f"scope : ({' OR '.join(apps)})")
    if search_filter.roles:
        roles = [scope_token("r", r.value) for r in search_filter.roles]
        parts.append(f"scope : ({' OR '.join(roles)})")
    return " AND ".join(parts)


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
        names = []
        for i, user in enumerate(search_filter.participants):
            params[f"who{i}"] = user
            names.append(f":who{i}")
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(s.participants) p"
            f" WHERE p.value IN ({', '.join(names)}))"
        )
    return clauses


def _hits_sql(
    search_filter: SearchFilter,
    params: dict[str, Any],
    *,
    score: bool = True,
    snippet: bool = True,
    newest_rows: int | None = None,
) -> str:
    """Matching rows with their session, score, snippet and turn (NULL for titles),
    after the turn-time and session filters. Needs :match bound. Without `score` or
    `snippet` those columns are 0 and NULL: bm25() costs a scan of every phrase's whole
    doclist (its IDF) and snippet() re-reads and re-tokenizes every matching row. With
    `newest_rows`, only the newest that many matching turns and titles: FTS5 reads its
    doclists backwards from the newest rowid and stops there."""
    turn_time, title_time = [], []
    if search_filter.since is not None:
        params["since"] = to_micros(search_filter.since)
        turn_time.append("t.created_at >= :since")
        title_time.append("s.last_activity_at >= :since")
    if search_filter.until is not None:
        params["until"] = to_micros(search_filter.until)
        turn_time.append("t.created_at < :until")
        title_time.append("s.last_activity_at < :until")
    session_clauses = _session_filters(search_filter, params)
    turn_where = " AND ".join(["f.rid > 0", *turn_time, *session_clauses])
    title_where = " AND ".join(["f.rid < 0", *title_time, *session_clauses])
    titles = (
        ""
        if search_filter.roles
        else " UNION ALL SELECT s.id, f.score, f.snip, NULL, NULL, NULL"
        f" FROM f JOIN sessions s ON s.rowid = -f.rid WHERE {title_where}"
    )
    columns = (
        "rowid AS rid,"
        f" {'bm25(search_index, 1.0, 0.0)' if score else '0.0'} AS score,"
        f" {_SNIPPET if snippet else 'NULL'} AS snip"
    )
    if newest_rows is None:
        rows = f"SELECT {columns} FROM search_index WHERE search_index MATCH :match"
    else:
        params["newest_rows"] = newest_rows
        # Turns under their own (growing) rowids, titles under minus their session's.
        rows = " UNION ALL ".join(
            f"SELECT * FROM (SELECT {columns} FROM search_index WHERE search_index MATCH"
            f" :match AND rowid {sign} 0 ORDER BY rowid {order} LIMIT :newest_rows)"
            for sign, order in ((">", "DESC"), ("<", "ASC"))
        )
    return (
        f"WITH f AS MATERIALIZED ({rows})"
        " SELECT s.id AS session_id, f.score AS score, f.snip AS snip,"
        " t.id AS turn_id, t.seq AS seq, t.role AS role"
        " FROM f JOIN turns t ON t.rowid = f.rid JOIN sessions s ON s.id = t.session_id"
        f" WHERE {turn_where}{titles}"
    )


# A query matching more rows than this is broad: it is answered without visiting all of
# its matches (see `search`).
BROAD_MATCHES = 5_000
# Sessions checked per step when walking the newest sessions for a broad query.
_WALK_STEPS = (64, 256, 1024)


def search(
    conn: driver.Connection,
    query: SearchQuery,
    scope: SearchScope,
    search_filter: SearchFilter,
    order: SearchOrder,
    after: SearchCursor | None,
    limit: int,
) -> list[SessionHit]:
    """A narrow query (at most BROAD_MATCHES matching rows in scope) is answered exactly
    from all its matches. A broad one, typically a very common word over a whole entity,
    would cost a pass over millions of rows, so: newest first walks the readable sessions
    from the most recent and keeps those that match, until the page is full (exact, and
    quick precisely because so much matches); by relevance ranks the newest BROAD_MATCHES
    matching turns and titles (the best matches among recent conversations)."""
    params: dict[str, Any] = {
        "match": match_expression(query, readable_tokens(scope), search_filter, scope.entity_id),
        "limit": limit,
    }
    broad = _matches_more_than(conn, params["match"], BROAD_MATCHES)
    if broad and order is SearchOrder.NEWEST:
        found = _newest_by_walking(conn, query, scope, search_filter, after, limit)
    else:
        found = _ranked_page(
            conn, params, search_filter, order, after, BROAD_MATCHES if broad else None
        )
    if found:
        _attach_best_turns(
            conn, query, search_filter, found, score_hits=order is SearchOrder.NEWEST
        )
    return list(found.values())


def _matches_more_than(conn: driver.Connection, match: str, n: int) -> bool:
    (count,) = conn.execute(
        "SELECT count(*) FROM (SELECT rowid FROM search_index WHERE search_index MATCH ?"
        " ORDER BY rowid DESC LIMIT ?)",
        (match, n + 1),
    ).fetchone()
    return count > n


def _ranked_page(
    conn: driver.Connection,
    params: dict[str, Any],
    search_filter: SearchFilter,
    order: SearchOrder,
    after: SearchCursor | None,
    newest_rows: int | None,
) -> dict[str, SessionHit]:
    # Ranking needs no snippet (the page's come from _attach_best_turns), and newest
    # first needs no score either (the page's come from there too).
    hits = _hits_sql(
        search_filter,
        params,
        score=order is SearchOrder.RELEVANCE,
        snippet=False,
        newest_rows=newest_rows,
    )
    if order is SearchOrder.RELEVANCE:
        key = "g.best"
        order_by = "g.best ASC, s.id ASC"
        cursor = "(g.best, s.id) > (:after_score, :after_id)"
    else:
        key = "s.last_activity_at"
        order_by = "s.last_activity_at DESC, s.id DESC"
        cursor = "(s.last_activity_at, s.id) < (:after_score, :after_id)"
    where = "1"
    if after is not None:
        params.update(after_score=after.score, after_id=after.session_id)
        where = cursor
    rows = conn.execute(
        f"SELECT {_SESSION_COLUMNS_OF_S}, g.best, {key} FROM"
        f" (SELECT session_id, min(score) AS best FROM ({hits}) GROUP BY session_id) g"
        " JOIN sessions s ON s.id = g.session_id"
        f" WHERE {where} ORDER BY {order_by} LIMIT :limit",
        params,
    ).fetchall()
    return {
        r[0]: SessionHit(codec.session_from_row(r[:-2]), float(r[-2]), float(r[-1]), None)
        for r in rows
    }


def _newest_by_walking(
    conn: driver.Connection,
    query: SearchQuery,
    scope: SearchScope,
    search_filter: SearchFilter,
    after: SearchCursor | None,
    limit: int,
) -> dict[str, SessionHit]:
    found: dict[str, SessionHit] = {}
    position = None if after is None else (int(after.score), after.session_id)
    step = 0
    while len(found) < limit:
        size = _WALK_STEPS[min(step, len(_WALK_STEPS) - 1)]
        step += 1
        sessions = _readable_sessions(conn, scope, search_filter, position, size)
        if not sessions:
            break
        matching = _sessions_matching(conn, query, search_filter, [s.id for s in sessions])
        for session in sessions:
            if session.id in matching:
                activity = to_micros(session.last_activity_at)
                found[session.id] = SessionHit(session, 0.0, float(activity), None)
                if len(found) == limit:
                    break
        last = sessions[-1]
        position = (to_micros(last.last_activity_at), last.id)
        if len(sessions) < size:
            break
    return found


def _readable_sessions(
    conn: driver.Connection,
    scope: SearchScope,
    search_filter: SearchFilter,
    position: tuple[int, str] | None,
    limit: int,
) -> list[Session]:
    """The next `limit` sessions in scope, most recent activity first, after `position`,
    through the sessions' own activity indexes (the owner's or the entity's), and the
    shared ones beside them."""
    params: dict[str, Any] = {"limit": limit, "entity": scope.entity_id}
    clauses = _session_filters(search_filter, params)
    if search_filter.since is not None:
        # A session whose last activity is before the window has no turn inside it.
        params["since"] = to_micros(search_filter.since)
        clauses.append("s.last_activity_at >= :since")
    if position is not None:
        params.update(at=position[0], after_id=position[1])
        clauses.append("(s.last_activity_at, s.id) < (:at, :after_id)")
    sources = ["s.entity_id = :entity"]
    if scope.owner_id is not None:
        params["owner"] = scope.owner_id
        sources[0] += " AND s.owner_id = :owner"
    if scope.shared_session_ids:
        names = []
        for i, session_id in enumerate(scope.shared_session_ids):
            params[f"shared{i}"] = session_id
            names.append(f":shared{i}")
        sources.append(f"s.id IN ({', '.join(names)})")
    sessions: dict[str, Session] = {}
    for source in sources:
        rows = conn.execute(
            f"SELECT {_SESSION_COLUMNS_OF_S} FROM sessions s"
            f" WHERE {' AND '.join([source, *clauses])}"
            " ORDER BY s.last_activity_at DESC, s.id DESC LIMIT :limit",
            params,
        ).fetchall()
        for row in rows:
            session = codec.session_from_row(row)
            sessions[session.id] = session
    merged = sorted(sessions.values(), key=lambda x: (x.last_activity_at, x.id), reverse=True)
    return merged[:limit]


def _sessions_matching(
    conn: driver.Connection, query: SearchQuery, search_filter: SearchFilter, ids: list[str]
) -> set[str]:
    params: dict[str, Any] = {
        "match": match_expression(
            query, [scope_token("s", i) for i in ids], SearchFilter(roles=search_filter.roles), ""
        )
    }
    hits = _hits_sql(search_filter, params, score=False, snippet=False)
    return {r[0] for r in conn.execute(f"SELECT DISTINCT session_id FROM ({hits})", params)}


def _attach_best_turns(
    conn: driver.Connection,
    query: SearchQuery,
    search_filter: SearchFilter,
    found: dict[str, SessionHit],
    score_hits: bool = False,
) -> None:
    """The best few matching turns of each session on the page, and its title's snippet;
    with `score_hits`, each hit's score too (its best row's)."""
    page = [scope_token("s", sid) for sid in found]
    params: dict[str, Any] = {
        "match": match_expression(query, page, SearchFilter(roles=search_filter.roles), "")
    }
    hits = _hits_sql(search_filter, params)
    rows = conn.execute(
        f"SELECT session_id, score, snip, turn_id, seq, role FROM ({hits})"
        " ORDER BY session_id, score ASC",
        params,
    ).fetchall()
    scored: set[str] = set()
    for session_id, score, snip, turn_id, seq, role in rows:
        hit = found.get(session_id)
        if hit is None:
            continue
        if score_hits and session_id not in scored:
            hit.score = float(score)
            scored.add(session_id)
        snippet = marked(snip)
        if turn_id is None:
            hit.title_snippet = snippet
        elif len(hit.turns) < TURNS_PER_HIT:
            hit.turns.append(TurnHit(turn_id, seq, TurnRole(role), snippet, float(score)))


def marked(snippet: str) -> str:
    """HTML-safe text with the matched words in <mark>."""
    return html.escape(snippet).replace(_MARK_OPEN, "<mark>").replace(_MARK_CLOSE, "</mark>")
