"""Atlas Search: the index definitions (atlas_search_index.json), the step that creates or
updates them (`sessionhub mongo apply-search-index`), and the `$search` pipeline that
MongoStore.search runs when SESSIONHUB_MONGO_SEARCH=atlas.

Atlas Search indexes are built by Atlas (or mongot beside MongoDB 8.x Community); a
plain mongod answers the commands with an error, reported as StoreUnavailable.

The pipeline (`search_pipeline`, pure, so that its shape is unit-tested without a server):

1. `$search` on `turns` (index `turns_search`): a `compound` whose `must` holds one clause
   per word (`text`), phrase (`phrase`, slop 0) or prefix (`wildcard` on the indexed
   stems), each over the turn's text: `content`, or any indexed field under
   `tool_invocations` (name, error, input, output); `mustNot` the excluded terms; and
   `filter` (not scored) the scope — `entity_id` equals, and `owner_id` equals or
   `session_id` in the shared ids — then chat apps, turn roles, and the turn time range on
   `created_at_us`. Highlights come along.
2. `$unionWith` the same `$search` on session titles (index `sessions_search`; the time
   range applies to the session's last activity, as in SQLite), unless roles are
   filtered (titles have no role).
3. Rows are grouped per session: best score, the best 3 turns (`$topN`), the title's
   highlights. Then `$lookup` the session, which applies what the index does not hold
   or may hold stale: visibility (not being created or deleted), archived, chat app,
   tags, participants (any of these people took part in the session, as in SQLite: a
   session filter, not the author of the matching turn).
4. Order and keyset cursor as SQLite: relevance on `sort_key = -searchScore` (lower is
   better) then session id ascending; newest on the session's `last_activity_at_us` then
   session id descending.

User text is only ever a `query` value of `text`, `phrase` or `wildcard` (whose three
special characters are escaped); ids and filters are only `value`s or `$match` literals.
No user string becomes an operator, a field name or an aggregation expression.

The analyzer `sessionhub_text` splits on anything but letters, marks and digits, folds
case and accents (`icuFolding`) and applies the Porter stemmer of Snowball. That is
English stemming only, and no cutting of Chinese, Japanese or Thai runs: Atlas answers
the multilingual cases of the search contract differently from search.py and SQLite
(docs/mongodb.md), and none of it can run here. The query's tokens are the ones
domain/words.py cut and folded; a prefix is not analyzed by `wildcard`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import Stemmer
from pymongo.errors import PyMongoError

from ...domain.errors import StoreUnavailable
from ...domain.models import TurnRole
from ...domain.query import (
    TURNS_PER_HIT,
    SearchCursor,
    SearchFilter,
    SearchOrder,
    SearchQuery,
    SearchRequest,
    SearchScope,
    SessionHit,
    Term,
    TermKind,
    TurnHit,
)
from ...domain.snippets import render
from ...domain.timecodec import to_micros
from ...domain.words import tokens
from . import codec, driver, indexes, search
from .codec import STATE

DEFINITION_FILE = "atlas_search_index.json"
_PORTER = Stemmer.Stemmer("porter")
TURNS_INDEX = "turns_search"
SESSIONS_INDEX = "sessions_search"
TOOL_FIELDS = "tool_invocations.*"
_WILDCARD_SPECIAL = ("\\", "*", "?")

Stage = dict[str, Any]


# Index definitions


def search_index_specs() -> list[dict[str, Any]]:
    """Each index: {"name", "collection", "definition"}."""
    data = json.loads((resources.files(__package__) / DEFINITION_FILE).read_text())
    return list(data["indexes"])


async def ensure_search_indexes(db: Any) -> list[str]:
    """Create each index, or update its definition when it exists. Returns what was done."""
    done = []
    for spec in search_index_specs():
        collection = db[spec["collection"]]
        existing = await collection.list_search_indexes(spec["name"]).to_list(None)
        where = f"{spec['name']!r} on {db.name}.{spec['collection']}"
        if existing:
            await collection.update_search_index(spec["name"], spec["definition"])
            done.append(f"updated search index {where}")
        else:
            await collection.create_search_index(
                {"name": spec["name"], "definition": spec["definition"]}
            )
            done.append(f"created search index {where}")
    return done


async def apply_search_index(url: str, database: str) -> str:
    """`sessionhub mongo apply-search-index`: both indexes, in the database of `url`."""
    client = driver.connect(url)
    try:
        return "\n".join(await ensure_search_indexes(client[database]))
    except PyMongoError as exc:
        raise StoreUnavailable(f"The search index could not be applied: {exc}") from exc
    finally:
        driver.close(client)


# Query terms


@dataclass(frozen=True, slots=True)
class Clause:
    """One term as an Atlas Search operator: "text", "phrase" or "wildcard"."""

    operator: str
    query: str


def escape_wildcard(text: str) -> str:
    for special in _WILDCARD_SPECIAL:
        text = text.replace(special, "\\" + special)
    return text


def term_clause(term: Term) -> Clause | None:
    """The operator for one term, or None when it holds no searchable characters.

    Words are split as the index splits them, so "foo_bar" is the phrase "foo bar" (as in
    SQLite and search.py)."""
    written = list(term.written)
    if not written:
        return None
    if term.kind is TermKind.PREFIX:
        # `wildcard` does not analyze its query: it is folded and stemmed as the index is.
        return Clause("wildcard", escape_wildcard(_PORTER.stemWord(term.words[0])) + "*")
    tokens = written
    if len(tokens) == 1:
        return Clause("text", tokens[0])
    return Clause("phrase", " ".join(tokens))


def compile_query(query: SearchQuery) -> tuple[list[Clause], list[Clause]] | None:
    """(included, excluded) clauses; None when an included term can match nothing."""
    included: list[Clause] = []
    excluded: list[Clause] = []
    for term in query.terms:
        clause = term_clause(term)
        if clause is None:
            if not term.excluded:
                return None
            continue
        (excluded if term.excluded else included).append(clause)
    return (included, excluded) if included else None


def _operator(clause: Clause, path: Any) -> Stage:
    body: dict[str, Any] = {"query": clause.query, "path": path}
    if clause.operator == "wildcard":
        body["allowAnalyzedField"] = True
    elif clause.operator == "phrase":
        body["slop"] = 0
    return {clause.operator: body}


def _in_turn_text(clause: Clause) -> Stage:
    """The clause on any text of a turn: what was said, or what its tools were given,
    returned or failed with."""
    return {
        "compound": {
            "should": [
                _operator(clause, "content"),
                _operator(clause, {"wildcard": TOOL_FIELDS}),
            ],
            "minimumShouldMatch": 1,
        }
    }


def _in_title(clause: Clause) -> Stage:
    return _operator(clause, "title")


# Filters


def _equals(path: str, value: str) -> Stage:
    return {"equals": {"path": path, "value": value}}


def _in(path: str, values: list[Any]) -> Stage:
    return {"in": {"path": path, "value": values}}


def _scope(scope: SearchScope, session_path: str) -> list[Stage]:
    own = [_equals("entity_id", scope.entity_id)]
    if scope.owner_id is not None:
        own.append(_equals("owner_id", scope.owner_id))
    if not scope.shared_session_ids:
        return own
    shared = _in(session_path, list(scope.shared_session_ids))
    return [
        {"compound": {"should": [{"compound": {"filter": own}}, shared], "minimumShouldMatch": 1}}
    ]


def _time_range(path: str, search_filter: SearchFilter) -> list[Stage]:
    bounds: dict[str, Any] = {}
    if search_filter.since is not None:
        bounds["gte"] = to_micros(search_filter.since)
    if search_filter.until is not None:
        bounds["lt"] = to_micros(search_filter.until)
    return [{"range": {"path": path, **bounds}}] if bounds else []


def _apps(search_filter: SearchFilter) -> list[Stage]:
    # Turns and sessions carry their session's own chat app, whatever entity it belongs to.
    return (
        [_in("chat_app_id", list(search_filter.chat_app_ids))] if search_filter.chat_app_ids else []
    )


def _compound(must: list[Stage], must_not: list[Stage], filters: list[Stage]) -> Stage:
    compound: Stage = {"must": must}
    if must_not:
        compound["mustNot"] = must_not
    compound["filter"] = filters
    return compound


def _session_match(search_filter: SearchFilter) -> Stage:
    return {
        f"session.{STATE}": {"$exists": False},
        **search.passes_filter(search_filter, "session."),
    }


def _after(order: SearchOrder, after: SearchCursor) -> Stage:
    if order is SearchOrder.RELEVANCE:
        key: float | int = after.score
        beyond = "$gt"
    else:
        key = int(after.score) if float(after.score).is_integer() else after.score
        beyond = "$lt"
    return {
        "$or": [
            {"sort_key": {beyond: key}},
            {"sort_key": key, "_id": {beyond: after.session_id}},
        ]
    }


# The pipeline


def search_pipeline(request: SearchRequest) -> list[Stage] | None:
    """The aggregation on `turns`, or None when nothing can match (no need to ask)."""
    compiled = compile_query(request.query)
    if compiled is None or request.limit <= 0:
        return None
    included, excluded = compiled
    scope, search_filter = request.scope, request.filter
    turn_filter = [
        *_scope(scope, "session_id"),
        *_apps(search_filter),
        *([_in("role", [r.value for r in search_filter.roles])] if search_filter.roles else []),
        *_time_range("created_at_us", search_filter),
    ]
    pipeline: list[Stage] = [
        {
            "$search": {
                "index": TURNS_INDEX,
                "compound": _compound(
                    [_in_turn_text(c) for c in included],
                    [_in_turn_text(c) for c in excluded],
                    turn_filter,
                ),
                "highlight": {"path": {"wildcard": "*"}, "maxNumPassages": 1},
            }
        },
        {
            "$project": {
                "_id": 0,
                "session_id": 1,
                "turn_id": "$_id",
                "seq": 1,
                "role": 1,
                "title": {"$literal": False},
                "score": {"$meta": "searchScore"},
                "highlights": {"$meta": "searchHighlights"},
            }
        },
    ]
    if not search_filter.roles:
        title_filter = [
            *_scope(scope, "_id"),
            *_apps(search_filter),
            *_time_range("last_activity_at_us", search_filter),
        ]
        pipeline.append(
            {
                "$unionWith": {
                    "coll": indexes.SESSIONS,
                    "pipeline": [
                        {
                            "$search": {
                                "index": SESSIONS_INDEX,
                                "compound": _compound(
                                    [_in_title(c) for c in included],
                                    [_in_title(c) for c in excluded],
                                    title_filter,
                                ),
                                "highlight": {"path": "title", "maxNumPassages": 1},
                            }
                        },
                        {
                            "$project": {
                                "_id": 0,
                                "session_id": "$_id",
                                "title": {"$literal": True},
                                "score": {"$meta": "searchScore"},
                                "highlights": {"$meta": "searchHighlights"},
                            }
                        },
                    ],
                }
            }
        )
    pipeline += [
        {
            "$group": {
                "_id": "$session_id",
                "best": {"$max": "$score"},
                # Turns sort before the title, so the title is among the first
                # TURNS_PER_HIT only when the session has fewer matching turns.
                "turns": {
                    "$topN": {
                        "n": TURNS_PER_HIT,
                        "sortBy": {"title": 1, "score": -1, "seq": 1},
                        "output": {
                            "turn_id": "$turn_id",
                            "seq": "$seq",
                            "role": "$role",
                            "score": "$score",
                            "highlights": "$highlights",
                            "title": "$title",
                        },
                    }
                },
                "title_highlights": {"$max": {"$cond": ["$title", "$highlights", None]}},
            }
        },
        {
            "$lookup": {
                "from": indexes.SESSIONS,
                "localField": "_id",
                "foreignField": "_id",
                "as": "session",
            }
        },
        {"$unwind": "$session"},
        {"$match": _session_match(search_filter)},
    ]
    if request.order is SearchOrder.RELEVANCE:
        pipeline.append({"$set": {"sort_key": {"$multiply": ["$best", -1]}}})
        direction = 1
    else:
        pipeline.append({"$set": {"sort_key": "$session.last_activity_at_us"}})
        direction = -1
    if request.after is not None:
        pipeline.append({"$match": _after(request.order, request.after)})
    pipeline += [
        {"$sort": {"sort_key": direction, "_id": direction}},
        {"$limit": request.limit},
        {"$set": {"turns": {"$filter": {"input": "$turns", "cond": {"$not": ["$$this.title"]}}}}},
    ]
    return pipeline


# Results


def _is_turn_text(path: Any) -> bool:
    return isinstance(path, str) and (path == "content" or path.startswith("tool_invocations."))


def highlight_snippet(highlights: list[dict[str, Any]] | None, paths: Any = _is_turn_text) -> str:
    """The best passage of `highlights` ($meta "searchHighlights") whose path `paths`
    accepts, HTML-escaped, its hits in <mark>, cut around them as search.py cuts."""
    candidates = [h for h in highlights or [] if paths(h.get("path"))]
    if not candidates:
        return ""

    def rank(h: dict[str, Any]) -> tuple[bool, float]:
        has_hit = any(t.get("type") == "hit" for t in h.get("texts") or [])
        return has_hit, float(h.get("score") or 0.0)

    best = max(candidates, key=rank)
    text = ""
    spans: list[tuple[int, int]] = []
    for part in best.get("texts") or []:
        value = str(part.get("value") or "")
        if part.get("type") == "hit":
            spans.append((len(text), len(text) + len(value)))
        text += value
    found = tokens(text)
    hits = [(i, i) for i, t in enumerate(found) if any(s < t.end and t.start < e for s, e in spans)]
    return render(text, len(found), hits, lambda n: [(t.start, t.end) for t in found[:n]])


def _is_title(path: Any) -> bool:
    return path == "title"


def hits_from(documents: list[dict[str, Any]]) -> list[SessionHit]:
    """SessionHits from the pipeline's output. Scores are negated searchScores (lower is
    better, as the other backends)."""
    hits = []
    for doc in documents:
        session = codec.session_from(doc["session"])
        title = doc.get("title_highlights")
        title_snippet = None
        if title is not None:
            # A title that matched without a passage to show: the title itself, unmarked.
            title_snippet = highlight_snippet(title, _is_title) or html.escape(session.title or "")
        turns = [
            TurnHit(
                t["turn_id"],
                t["seq"],
                TurnRole(t["role"]),
                highlight_snippet(t.get("highlights")),
                -float(t["score"]),
            )
            for t in doc.get("turns") or []
            if not t.get("title")
        ]
        hits.append(
            SessionHit(session, -float(doc["best"]), float(doc["sort_key"]), title_snippet, turns)
        )
    return hits


async def search_sessions(turns: Any, request: SearchRequest) -> list[SessionHit]:
    pipeline = search_pipeline(request)
    if pipeline is None:
        return []
    return hits_from(await turns.aggregate(pipeline).to_list(None))
