"""Full-text search on a term index: the same query language and results as SQLite's FTS5.

Why not `$text`: MongoDB's text search has no prefix queries (`config*`), cuts and stems
words its own way, and scores whole documents, so it cannot give the results the search
contract (tests/storage/test_store_search_contract.py) asks of every backend. Instead
every turn carries `terms` and every session `title_terms`: the distinct tokens of its
searchable text (content, tool names, inputs, outputs and errors) as domain/words.py cuts
and folds them, and the stem of each word in the row's language as a stem term
("de:haus", domain/analysis.py). Multikey indexes that begin with the scope
(`entity_id`, then `owner_id`) hold them, so a search reads only the caller's scope:

- every word must be in one row, as itself or through its stem in some language:
  `terms: {$in: [word, "de:haus", "en:hous", ...]}` per word; a prefix is an anchored
  `$regex` on the same index (a stem term holds a colon, no prefix does); excluded words
  are `$nin` of the words as typed;
- phrases, excluded phrases and prefixes are checked on the row's tokens in Python,
  which also marks the snippet and computes a BM25-like score (lower is better, as FTS5);
- the hits are grouped by session, joined with the session filters, ordered and cut at
  the keyset cursor like the SQLite query.

With SESSIONHUB_MONGO_SEARCH=atlas, atlas.py answers instead (Atlas Search `$search`); the
terms are still written then, so switching back needs no backfill.

Nothing here names Motor: collections are used through the API PyMongo's async client
shares.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ...domain.analysis import analyze
from ...domain.expansion import IndexQuery, expand, near_spellings, typo_shapes
from ...domain.languages import NO_CONFIGURED_LANGUAGES, Languages
from ...domain.models import Person, Turn, TurnRole
from ...domain.query import (
    TURNS_PER_HIT,
    SearchCursor,
    SearchFilter,
    SearchOrder,
    SearchQuery,
    SearchRequest,
    SearchScope,
    SessionHit,
    TermKind,
    TurnHit,
    searchable_text,
)
from ...domain.snippets import snippet
from ...domain.timecodec import to_micros
from . import codec

# BM25 with a fixed average row length: a row's score depends on that row only, so a
# cursor taken from one page compares exactly with the next page's scores.
K1, B, AVERAGE_TOKENS = 1.2, 0.75, 64.0
# Rows holding a word are counted up to this many: enough to tell common from rare.
COUNTED_ROWS_MAX = 10_000
# Near spellings of a word are looked for in the words of at most this many rows of the
# caller's scope holding a word of the same first letter: a bounded cost per word, at the
# price of missing a near spelling that only older rows of a large scope hold.
NEAR_SPELLING_ROWS = 5_000


def term_set(text: str | None, languages: tuple[str, ...] = ()) -> list[str]:
    """The terms a row holds to be found by, its text stemmed in one of `languages` (any
    when empty)."""
    return analyze(text, languages).terms() if text else []


def turn_body(content: str, tool_invocations: Iterable[Any]) -> str:
    """The searchable text of a turn (the same text SQLite indexes)."""
    return searchable_text(
        content, ((c.name, c.input, c.output, c.error) for c in tool_invocations)
    )


def turn_terms(turn: Turn, languages: tuple[str, ...] = ()) -> list[str]:
    return term_set(turn_body(turn.content, turn.tool_invocations), languages)


# Queries


def _term_conditions(query: IndexQuery, name: str) -> list[dict[str, Any]]:
    """The conditions of a step of the query on a row's terms."""
    conditions: list[dict[str, Any]] = []
    for term in query.required:
        match term.kind:
            case TermKind.WORD:
                held = [*term.index_words(query.with_typos), *sorted(term.stems)]
                conditions.append({name: {"$in": held}})
            case TermKind.PREFIX:
                conditions.append({name: {"$regex": "^" + re.escape(term.words[0])}})
            case _:
                conditions.append({name: {"$all": list(dict.fromkeys(term.words))}})
    excluded = [t.words[0] for t in query.excluded if t.kind is TermKind.WORD]
    if excluded:
        conditions.append({name: {"$nin": excluded}})
    return conditions


@dataclass(slots=True)
class _Row:
    session_id: str
    score: float
    snippet: str
    turn: tuple[str, int, TurnRole] | None  # (id, seq, role); None for a title


def _match(query: IndexQuery, text: str, languages: tuple[str, ...]) -> tuple[float, str] | None:
    """Score and marked snippet of `text` (of a chat app in `languages`) when it
    satisfies the query, else None. Its stems are made again as they were written."""
    analysis = analyze(text, languages)
    stems = analysis.stems()
    if not query.in_step(analysis.words, stems):
        return None  # the terms' condition finds a superset (a phrase's words anywhere)
    how = query.match(analysis.words, stems)
    if how is None:
        return None
    marked = snippet(text, query, stems=stems)
    if marked is None:
        return None
    norm = K1 * (1 - B + B * len(analysis.words) / AVERAGE_TOKENS)
    tf = len(how.spans)
    return how.score(-tf * (K1 + 1) / (tf + norm)), marked


async def search(
    sessions: Any,
    turns: Any,
    visible: dict[str, Any],
    request: SearchRequest,
    languages: Languages = NO_CONFIGURED_LANGUAGES,
) -> list[SessionHit]:
    """Step by step down the query's ladder (`IndexQuery.levels`): by relevance until the
    page is full, newest first from the first step that finds anything."""
    if request.limit <= 0:
        return []
    search_filter, after = request.filter, request.after
    query = await _index_query(sessions, turns, visible, request.scope, request.query)
    relevance = request.order is SearchOrder.RELEVANCE
    rows: dict[tuple[str, str | None], _Row] = {}
    ranked: list[tuple[tuple[float, str], float, list[_Row]]] = []
    found: dict[str, dict[str, Any]] = {}
    for step in query.levels():
        step_rows = await _turn_rows(turns, step, request.scope, search_filter, languages)
        if not search_filter.roles:
            step_rows += await _title_rows(
                sessions, visible, step, request.scope, search_filter, languages
            )
        if not relevance:
            rows = {}
        for row in step_rows:
            rows[(row.session_id, row.turn[0] if row.turn else None)] = row
        ids = {r.session_id for r in rows.values()} - set(found)
        found |= await _sessions_passing(sessions, visible, ids, search_filter)
        ranked = _ranked(rows.values(), found, relevance, after)
        if relevance and len(ranked) >= request.limit:
            break
        if not relevance and any(r.session_id in found for r in rows.values()):
            break
    hits = []
    for (sort_key, session_id), best, session_rows in ranked[: request.limit]:
        hit = SessionHit(codec.session_from(found[session_id]), best, sort_key, None)
        for row in session_rows:
            if row.turn is None:
                hit.title_snippet = row.snippet
            elif len(hit.turns) < TURNS_PER_HIT:
                turn_id, seq, role = row.turn
                hit.turns.append(TurnHit(turn_id, seq, role, row.snippet, row.score))
        hits.append(hit)
    return hits


def _ranked(
    rows: Iterable[_Row],
    found: dict[str, dict[str, Any]],
    relevance: bool,
    after: SearchCursor | None,
) -> list[tuple[tuple[float, str], float, list[_Row]]]:
    """(sort key, best score, rows best first) of each session passing the filters, in
    the order asked, after the cursor."""
    by_session: dict[str, list[_Row]] = {}
    for row in rows:
        if row.session_id in found:
            by_session.setdefault(row.session_id, []).append(row)
    ranked = []
    for session_id, session_rows in by_session.items():
        session_rows.sort(key=lambda r: r.score)
        best = session_rows[0].score
        if relevance:
            key: tuple[float, str] = (best, session_id)
        else:
            key = (float(found[session_id]["last_activity_at_us"]), session_id)
        ranked.append((key, best, session_rows))
    if relevance:
        ranked.sort(key=lambda r: r[0])
        if after is not None:
            ranked = [r for r in ranked if r[0] > (after.score, after.session_id)]
    else:
        ranked.sort(key=lambda r: r[0], reverse=True)
        if after is not None:
            ranked = [r for r in ranked if r[0] < (after.score, after.session_id)]
    return ranked


async def _index_query(
    sessions: Any, turns: Any, visible: dict[str, Any], scope: SearchScope, search: SearchQuery
) -> IndexQuery:
    """The search with its words' near spellings (from the words of the caller's scope,
    up to NEAR_SPELLING_ROWS rows per word) and how many rows in scope hold each term;
    forms of stems need no look-up, the rows hold their stems."""
    near: dict[str, list[tuple[str, int]]] = {}
    for shape in typo_shapes(search):
        prefix = {"$regex": "^" + re.escape(shape.first)}
        words: set[str] = set()
        for collection, name, condition in (
            (turns, "terms", _scope(scope, "session_id")),
            (sessions, "title_terms", {"$and": [_scope(scope, "_id"), visible]}),
        ):
            pipeline = [
                {"$match": {"$and": [condition, {name: prefix}]}},
                {"$limit": NEAR_SPELLING_ROWS},
                {"$unwind": f"${name}"},
                {"$match": {name: prefix}},
                {"$group": {"_id": f"${name}"}},
            ]
            words |= {d["_id"] for d in await collection.aggregate(pipeline).to_list(None)}
        near[shape.word] = near_spellings(shape, words)
    query = expand(search, {}, near)
    counts: dict[str, int] = {}
    for term in query.included:
        if term.kind is TermKind.WORD:
            held = [*term.words, *sorted(term.stems)]
            counts[term.words[0]] = await turns.count_documents(
                {"$and": [_scope(scope, "session_id"), {"terms": {"$in": held}}]},
                limit=COUNTED_ROWS_MAX,
            )
    return replace(
        query,
        included=tuple(
            replace(t, rows=counts.get(t.words[0], 0)) if t.kind is TermKind.WORD else t
            for t in query.included
        ),
    )


def _scope(scope: SearchScope, session_key: str) -> dict[str, Any]:
    own: dict[str, Any] = {"entity_id": scope.entity_id}
    if scope.owner_id is not None:
        own["owner_id"] = scope.owner_id
    if not scope.shared_session_ids:
        return own
    return {"$or": [own, {session_key: {"$in": list(scope.shared_session_ids)}}]}


def _time_range(name: str, search_filter: SearchFilter) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if search_filter.since is not None:
        bounds["$gte"] = to_micros(search_filter.since)
    if search_filter.until is not None:
        bounds["$lt"] = to_micros(search_filter.until)
    return {name: bounds} if bounds else {}


async def _turn_rows(
    turns: Any,
    c: IndexQuery,
    scope: SearchScope,
    search_filter: SearchFilter,
    languages: Languages,
) -> list[_Row]:
    conditions = [_scope(scope, "session_id"), *_term_conditions(c, "terms")]
    if search_filter.roles:
        conditions.append({"role": {"$in": [r.value for r in search_filter.roles]}})
    if search_filter.chat_app_ids:
        # Shared sessions of other entities pass here; the session filter decides.
        conditions.append(
            {
                "$or": [
                    {"chat_app_id": {"$in": list(search_filter.chat_app_ids)}},
                    {"session_id": {"$in": list(scope.shared_session_ids)}},
                ]
            }
        )
    conditions.append(_time_range("created_at_us", search_filter))
    cursor = turns.find(
        {"$and": [cond for cond in conditions if cond]},
        {
            "session_id": 1,
            "chat_app_id": 1,
            "seq": 1,
            "role": 1,
            "content": 1,
            "tool_invocations": 1,
        },
    )
    rows = []
    for doc in await cursor.to_list(None):
        tools = [codec.tool_from(t) for t in doc.get("tool_invocations") or []]
        text = turn_body(doc["content"], tools)
        matched = _match(c, text, languages.get(doc.get("chat_app_id", ""), ()))
        if matched is not None:
            score, snippet = matched
            turn = (doc["_id"], doc["seq"], TurnRole(doc["role"]))
            rows.append(_Row(doc["session_id"], score, snippet, turn))
    return rows


async def _title_rows(
    sessions: Any,
    visible: dict[str, Any],
    c: IndexQuery,
    scope: SearchScope,
    search_filter: SearchFilter,
    languages: Languages,
) -> list[_Row]:
    conditions = [
        _scope(scope, "_id"),
        visible,
        *_term_conditions(c, "title_terms"),
        _time_range("last_activity_at_us", search_filter),
    ]
    cursor = sessions.find(
        {"$and": [cond for cond in conditions if cond]}, {"title": 1, "chat_app_id": 1}
    )
    rows = []
    for doc in await cursor.to_list(None):
        matched = _match(c, doc.get("title") or "", languages.get(doc["chat_app_id"], ()))
        if matched is not None:
            rows.append(_Row(doc["_id"], matched[0], matched[1], None))
    return rows


def took_part(people: Iterable[Person], prefix: str = "") -> dict[str, Any]:
    """Sessions (fields under `prefix`) any of `people` took part in: a user of the
    session's entity is among its `participants`, anyone else among its
    `external_participants`."""
    by_entity: dict[str | None, list[str]] = {}
    for person in people:
        by_entity.setdefault(person.entity_id, []).append(person.user_id)
    alternatives: list[dict[str, Any]] = []
    for entity_id, user_ids in by_entity.items():
        entity = {"$eq": entity_id}
        alternatives.append(
            {f"{prefix}entity_id": entity, f"{prefix}participants": {"$in": user_ids}}
        )
        alternatives.append(
            {
                f"{prefix}external_participants": {
                    "$elemMatch": {"entity_id": entity, "user_id": {"$in": user_ids}}
                }
            }
        )
    return {"$or": alternatives}


async def _sessions_passing(
    sessions: Any, visible: dict[str, Any], ids: set[str], search_filter: SearchFilter
) -> dict[str, dict[str, Any]]:
    query: dict[str, Any] = {"_id": {"$in": sorted(ids)}, **visible}
    query.update(passes_filter(search_filter))
    return {d["_id"]: d for d in await sessions.find(query).to_list(None)}


def passes_filter(search_filter: SearchFilter, prefix: str = "") -> dict[str, Any]:
    """The conditions on a session document (its fields under `prefix`) that a search
    filter sets: archived or not, chat apps, tags, participants."""
    conditions: dict[str, Any] = {}
    if not search_filter.include_archived:
        conditions[f"{prefix}archived"] = False
    if search_filter.chat_app_ids:
        conditions[f"{prefix}chat_app_id"] = {"$in": list(search_filter.chat_app_ids)}
    if search_filter.tags:
        conditions[f"{prefix}tags"] = {"$in": list(search_filter.tags)}
    if search_filter.participants:
        conditions.update(took_part(search_filter.participants, prefix))
    return conditions
