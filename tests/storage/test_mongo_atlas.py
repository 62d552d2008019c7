"""The Atlas Search path of the MongoDB backend, without a server: the index definitions
that ship with it, the command that applies them, the `$search` pipeline that
MongoStore.search runs with SESSIONHUB_MONGO_SEARCH=atlas (its shape for every term kind,
exclusion, filter, order and cursor, and that user text stays a value), and how its
output becomes hits. Against a real Atlas Search the contract suite runs it as the
`mongo-atlas` backend (tests/storage/conftest.py), only where MONGODB_ATLAS_SEARCH=1.
The `$text` indexes that search no longer reads are dropped at start: that runs against
mongoeco over the wire."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from sessionhub.domain.errors import InvalidInput
from sessionhub.domain.models import Person, TurnRole
from sessionhub.domain.query import (
    SearchCursor,
    SearchFilter,
    SearchOrder,
    SearchRequest,
    SearchScope,
    parse_query,
)
from sessionhub.domain.redaction import redact_details
from sessionhub.domain.timecodec import to_micros
from sessionhub.server.cli import cli
from sessionhub.server.errors import SettingsError
from sessionhub.server.settings import load_settings
from sessionhub.storage.mongo import MongoStore, codec, indexes
from sessionhub.storage.mongo.atlas import (
    escape_wildcard,
    highlight_snippet,
    hits_from,
    search_index_specs,
    search_pipeline,
)
from sessionhub.storage.mongo.driver import connect

from .test_store_contract import T0, make_session

ALICE = SearchScope("acme", "alice")
EVERYTHING = SearchFilter(
    chat_app_ids=("support", "knowledge"),
    since=T0,
    until=T0 + timedelta(days=1),
    participants=(Person("acme", "carol"),),
    tags=("vip",),
    include_archived=False,
)


def pipeline(
    text: str,
    scope: SearchScope = ALICE,
    search_filter: SearchFilter | None = None,
    order: SearchOrder = SearchOrder.RELEVANCE,
    after: SearchCursor | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    built = search_pipeline(
        SearchRequest(
            parse_query(text), scope, search_filter or SearchFilter(), order, after, limit
        )
    )
    assert built is not None
    return built


def turn_search(stages: list[dict[str, Any]]) -> dict[str, Any]:
    assert next(iter(stages[0])) == "$search", "the pipeline must begin with $search"
    return stages[0]["$search"]


def title_search(stages: list[dict[str, Any]]) -> dict[str, Any] | None:
    for stage in stages:
        if "$unionWith" in stage:
            union = stage["$unionWith"]
            assert union["coll"] == indexes.SESSIONS
            return union["pipeline"][0]["$search"]
    return None


def stage(stages: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s[name] for s in stages if name in s]


def on_turn_text(operator: str, body: dict[str, Any]) -> dict[str, Any]:
    """What a clause looks like on turns: the text of the turn or of its tools."""
    return {
        "compound": {
            "should": [
                {operator: {**body, "path": "content"}},
                {operator: {**body, "path": {"wildcard": "tool_invocations.*"}}},
            ],
            "minimumShouldMatch": 1,
        }
    }


# The index definitions


def test_the_definitions_index_turn_text_titles_and_the_scope() -> None:
    specs = {s["name"]: s for s in search_index_specs()}
    assert {(n, s["collection"]) for n, s in specs.items()} == {
        ("turns_search", "turns"),
        ("sessions_search", "sessions"),
    }
    for spec in specs.values():
        definition = spec["definition"]
        assert definition["mappings"]["dynamic"] is False
        assert definition["analyzer"] == definition["searchAnalyzer"] == "sessionhub_text"
        (analyzer,) = definition["analyzers"]
        assert analyzer["name"] == "sessionhub_text"
        assert analyzer["tokenizer"] == {"type": "regexSplit", "pattern": "[^\\p{L}\\p{M}\\p{N}]+"}
        filters = [f["type"] for f in analyzer["tokenFilters"]]
        # Case and accents folded, then Porter stems: what SQLite and the stems path do.
        assert filters[-2:] == ["icuFolding", "snowballStemming"]
        assert analyzer["tokenFilters"][-1]["stemmerName"] == "porter"
    turns = specs["turns_search"]["definition"]["mappings"]["fields"]
    assert turns["content"] == {"type": "string", "analyzer": "sessionhub_text"}
    tools = turns["tool_invocations"]["fields"]
    assert set(tools) == {"name", "error", "input", "output"}
    for token in ("entity_id", "owner_id", "session_id", "chat_app_id", "role"):
        assert turns[token] == {"type": "token"}
    assert turns["created_at_us"] == {"type": "number"}
    titles = specs["sessions_search"]["definition"]["mappings"]["fields"]
    assert titles["title"] == {"type": "string", "analyzer": "sessionhub_text"}
    for token in ("_id", "entity_id", "owner_id", "chat_app_id"):
        assert titles[token] == {"type": "token"}
    assert titles["last_activity_at_us"] == {"type": "number"}


def _operators(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"equals", "in", "range", "text", "phrase", "wildcard"} and "path" in value:
                yield key, value
            else:
                yield from _operators(value)
    elif isinstance(node, list):
        for item in node:
            yield from _operators(item)


def test_every_path_the_pipeline_searches_is_mapped_with_the_right_type() -> None:
    specs = {s["name"]: s["definition"]["mappings"]["fields"] for s in search_index_specs()}
    stages = pipeline('router "exact phrase" conf* -excluded', search_filter=EVERYTHING)
    stages_with_roles = pipeline("router", search_filter=SearchFilter(roles=(TurnRole.USER,)))
    searches = [
        (turn_search(stages), specs["turns_search"]),
        (turn_search(stages_with_roles), specs["turns_search"]),
        (title_search(stages), specs["sessions_search"]),
    ]
    shared = pipeline("router", SearchScope("acme", "alice", ("s1",)))
    searches += [(turn_search(shared), specs["turns_search"])]
    searches += [(title_search(shared), specs["sessions_search"])]
    wanted = {"equals": "token", "in": "token", "range": "number"}
    for search, fields in searches:
        for operator, body in _operators(search["compound"]):
            path = body["path"]
            if isinstance(path, dict):
                assert path == {"wildcard": "tool_invocations.*"}
                assert "tool_invocations" in fields
                continue
            mapping = fields[path]
            assert mapping["type"] == wanted.get(operator, "string"), (operator, path)


def test_the_command_needs_a_mongodb_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONHUB_DATABASE_URL", "sqlite:///:memory:")
    result = CliRunner().invoke(cli, ["mongo", "apply-search-index"])
    assert result.exit_code == 2
    assert "not a mongodb" in result.output


def test_the_command_reports_an_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SESSIONHUB_DATABASE_URL", "mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=200"
    )
    result = CliRunner().invoke(cli, ["mongo", "apply-search-index"])
    assert result.exit_code == 1
    assert "could not be applied" in result.output


# Terms


def test_a_word_must_be_in_the_turn_text_and_in_the_title() -> None:
    stages = pipeline("Router")
    assert turn_search(stages)["index"] == "turns_search"
    assert turn_search(stages)["compound"]["must"] == [on_turn_text("text", {"query": "Router"})]
    assert title_search(stages)["index"] == "sessions_search"
    assert title_search(stages)["compound"]["must"] == [
        {"text": {"query": "Router", "path": "title"}}
    ]
    assert "mustNot" not in turn_search(stages)["compound"]


def test_every_word_must_match() -> None:
    must = turn_search(pipeline("configured firewall"))["compound"]["must"]
    assert must == [
        on_turn_text("text", {"query": "configured"}),
        on_turn_text("text", {"query": "firewall"}),
    ]


def test_a_phrase_is_exact_and_in_order() -> None:
    must = turn_search(pipeline('"crème brûlée"'))["compound"]["must"]
    assert must == [on_turn_text("phrase", {"query": "crème brûlée", "slop": 0})]
    title = title_search(pipeline('"crème brûlée"'))
    assert title is not None
    assert title["compound"]["must"] == [
        {"phrase": {"query": "crème brûlée", "path": "title", "slop": 0}}
    ]


@pytest.mark.parametrize(
    ("text", "words"), [("node.js", "node js"), ("e-mail", "e mail"), ("foo_bar", "foo bar")]
)
def test_words_the_index_splits_are_a_phrase(text: str, words: str) -> None:
    must = turn_search(pipeline(text))["compound"]["must"]
    assert must == [on_turn_text("phrase", {"query": words, "slop": 0})]


@pytest.mark.parametrize(
    ("text", "query"),
    [("config*", "config*"), ("Configuring*", "configur*"), ("CAFÉ*", "cafe*")],
)
def test_a_prefix_is_a_wildcard_on_the_folded_stem(text: str, query: str) -> None:
    # `wildcard` does not analyze its query: it is folded and stemmed as the index is.
    must = turn_search(pipeline(text))["compound"]["must"]
    assert must == [on_turn_text("wildcard", {"query": query, "allowAnalyzedField": True})]


def test_excluded_words_phrases_and_prefixes_are_must_not() -> None:
    stages = pipeline('café -firewall -"crème brûlée" -conf*')
    compound = turn_search(stages)["compound"]
    assert compound["must"] == [on_turn_text("text", {"query": "café"})]
    assert compound["mustNot"] == [
        on_turn_text("text", {"query": "firewall"}),
        on_turn_text("phrase", {"query": "crème brûlée", "slop": 0}),
        on_turn_text("wildcard", {"query": "conf*", "allowAnalyzedField": True}),
    ]
    title = title_search(stages)
    assert title is not None
    assert [next(iter(c)) for c in title["compound"]["mustNot"]] == ["text", "phrase", "wildcard"]


def test_a_term_without_searchable_characters() -> None:
    # Alone, it is no search at all.
    with pytest.raises(InvalidInput):
        parse_query("___")
    # Excluded, it excludes nothing.
    assert "mustNot" not in turn_search(pipeline("router -___"))["compound"]
    assert (
        search_pipeline(
            SearchRequest(parse_query("x"), ALICE, SearchFilter(), SearchOrder.NEWEST, None, 0)
        )
        is None
    )


def test_wildcard_special_characters_are_escaped() -> None:
    assert escape_wildcard("a*b?c\\d") == "a\\*b\\?c\\\\d"


# Scope and filters


def test_the_scope_is_a_filter_inside_the_index() -> None:
    turns = turn_search(pipeline("router"))["compound"]
    assert turns["filter"] == [
        {"equals": {"path": "entity_id", "value": "acme"}},
        {"equals": {"path": "owner_id", "value": "alice"}},
    ]
    entity = turn_search(pipeline("router", SearchScope("acme", None)))["compound"]
    assert entity["filter"] == [{"equals": {"path": "entity_id", "value": "acme"}}]


def test_shared_sessions_join_the_scope_by_session_id() -> None:
    stages = pipeline("router", SearchScope("acme", "alice", ("s1", "s2")))
    own = [
        {"equals": {"path": "entity_id", "value": "acme"}},
        {"equals": {"path": "owner_id", "value": "alice"}},
    ]

    def scope(path: str) -> list[dict[str, Any]]:
        return [
            {
                "compound": {
                    "should": [
                        {"compound": {"filter": own}},
                        {"in": {"path": path, "value": ["s1", "s2"]}},
                    ],
                    "minimumShouldMatch": 1,
                }
            }
        ]

    assert turn_search(stages)["compound"]["filter"] == scope("session_id")
    title = title_search(stages)
    assert title is not None
    assert title["compound"]["filter"] == scope("_id")


def test_chat_apps_and_the_time_range_filter_turns_and_titles() -> None:
    stages = pipeline("router", search_filter=EVERYTHING)
    since, until = to_micros(T0), to_micros(T0 + timedelta(days=1))
    apps = {"in": {"path": "chat_app_id", "value": ["support", "knowledge"]}}
    assert turn_search(stages)["compound"]["filter"][2:] == [
        apps,
        {"range": {"path": "created_at_us", "gte": since, "lt": until}},
    ]
    title = title_search(stages)
    assert title is not None
    # A title has no time of its own: its session's last activity, as in SQLite.
    assert title["compound"]["filter"][2:] == [
        apps,
        {"range": {"path": "last_activity_at_us", "gte": since, "lt": until}},
    ]


def test_one_bound_of_the_time_range() -> None:
    stages = pipeline("router", search_filter=SearchFilter(until=T0))
    assert turn_search(stages)["compound"]["filter"][-1] == {
        "range": {"path": "created_at_us", "lt": to_micros(T0)}
    }


def test_roles_filter_turns_and_leave_titles_out() -> None:
    stages = pipeline(
        "router", search_filter=SearchFilter(roles=(TurnRole.ASSISTANT, TurnRole.TOOL))
    )
    assert turn_search(stages)["compound"]["filter"][-1] == {
        "in": {"path": "role", "value": ["ASSISTANT", "TOOL"]}
    }
    assert title_search(stages) is None


def test_session_filters_apply_to_the_session_after_grouping() -> None:
    stages = pipeline("router", search_filter=EVERYTHING)
    (lookup,) = stage(stages, "$lookup")
    assert lookup == {
        "from": "sessions",
        "localField": "_id",
        "foreignField": "_id",
        "as": "session",
    }
    session_match = stage(stages, "$match")[0]
    assert session_match == {
        "session.state": {"$exists": False},
        "session.archived": False,
        "session.chat_app_id": {"$in": ["support", "knowledge"]},
        "session.tags": {"$in": ["vip"]},
        # acme's carol: among the users of an acme session, or an external grantee.
        "$or": [
            {"session.entity_id": {"$eq": "acme"}, "session.participants": {"$in": ["carol"]}},
            {
                "session.external_participants": {
                    "$elemMatch": {"entity_id": {"$eq": "acme"}, "user_id": {"$in": ["carol"]}}
                }
            },
        ],
    }
    # Participants are who took part in the session, not the author of the matching turn.
    assert "author_id" not in repr(turn_search(stages))
    archived = stage(
        pipeline("router", search_filter=SearchFilter(include_archived=True)), "$match"
    )
    assert archived[0] == {"session.state": {"$exists": False}}


def test_hits_are_grouped_per_session_with_the_best_three_turns() -> None:
    stages = pipeline("router")
    (group,) = stage(stages, "$group")
    assert group["_id"] == "$session_id"
    assert group["best"] == {"$max": "$score"}
    top = group["turns"]["$topN"]
    assert top["n"] == 3
    assert top["sortBy"] == {"title": 1, "score": -1, "seq": 1}
    assert group["title_highlights"] == {"$max": {"$cond": ["$title", "$highlights", None]}}
    projections = stage(stages, "$project")
    assert projections[0]["score"] == {"$meta": "searchScore"}
    assert projections[0]["highlights"] == {"$meta": "searchHighlights"}
    assert turn_search(stages)["highlight"] == {"path": {"wildcard": "*"}, "maxNumPassages": 1}
    title = title_search(stages)
    assert title is not None
    assert title["highlight"] == {"path": "title", "maxNumPassages": 1}
    assert stages[-1] == {
        "$set": {"turns": {"$filter": {"input": "$turns", "cond": {"$not": ["$$this.title"]}}}}
    }


# Orders and cursors


def test_relevance_orders_by_negated_score_then_session_id() -> None:
    stages = pipeline("router", limit=7)
    assert {"$set": {"sort_key": {"$multiply": ["$best", -1]}}} in stages
    assert stages[-3:-1] == [{"$sort": {"sort_key": 1, "_id": 1}}, {"$limit": 7}]
    assert len(stage(stages, "$match")) == 1  # the session filters only: no cursor
    after = pipeline("router", after=SearchCursor(-2.5, "s9"))
    assert stage(after, "$match")[1] == {
        "$or": [{"sort_key": {"$gt": -2.5}}, {"sort_key": -2.5, "_id": {"$gt": "s9"}}]
    }


def test_newest_orders_by_last_activity_then_session_id() -> None:
    stages = pipeline("router", order=SearchOrder.NEWEST, limit=3)
    assert {"$set": {"sort_key": "$session.last_activity_at_us"}} in stages
    assert stages[-3:-1] == [{"$sort": {"sort_key": -1, "_id": -1}}, {"$limit": 3}]
    at = to_micros(T0)
    after = pipeline("router", order=SearchOrder.NEWEST, after=SearchCursor(float(at), "s9"))
    cursor = stage(after, "$match")[1]
    assert cursor == {"$or": [{"sort_key": {"$lt": at}}, {"sort_key": at, "_id": {"$lt": "s9"}}]}
    assert isinstance(cursor["$or"][0]["sort_key"]["$lt"], int)


def test_the_cursor_comes_after_the_session_filters_and_before_the_sort() -> None:
    stages = pipeline("router", after=SearchCursor(-1.0, "s1"))
    names = [next(iter(s)) for s in stages]
    assert names == [
        "$search",
        "$project",
        "$unionWith",
        "$group",
        "$lookup",
        "$unwind",
        "$match",
        "$set",
        "$match",
        "$sort",
        "$limit",
        "$set",
    ]


# User text is never syntax

MARK = "zzhostile"
HOSTILE_QUERIES = [
    f'$where:{MARK} {{"$gt": "{MARK}"}}',
    f"{MARK}* -{MARK}\\*? $$ROOT.{MARK}",
    f'"unclosed {MARK} AND OR NOT',
    f"{MARK}:title^2 ({MARK}) {MARK}~1 /{MARK}.*/",
]
HOSTILE_IDS = f"$where.{MARK}", f"$$ROOT{MARK}", f"{{$gt:{MARK}}}"


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for item in node:
            yield from _leaves(item, path)
    else:
        yield path, node


def _keys(stages: list[dict[str, Any]]) -> set[str]:
    return {key for path, _ in _leaves(stages) for key in path}


def _reference_keys() -> set[str]:
    keys: set[str] = set()
    scope = SearchScope("acme", "alice", ("s1",))
    for order, after in (
        (SearchOrder.RELEVANCE, SearchCursor(-1.0, "s")),
        (SearchOrder.NEWEST, SearchCursor(1.0, "s")),
    ):
        keys |= _keys(pipeline('a "b c" dd* -e -"f g" -hh*', scope, EVERYTHING, order, after))
    return keys


@pytest.mark.parametrize("text", HOSTILE_QUERIES)
def test_user_text_is_only_ever_a_query_value(text: str) -> None:
    hostile = SearchFilter(
        chat_app_ids=HOSTILE_IDS,
        participants=tuple(Person(i, i) for i in HOSTILE_IDS),
        tags=HOSTILE_IDS,
        include_archived=True,
    )
    scope = SearchScope(HOSTILE_IDS[0], HOSTILE_IDS[1], HOSTILE_IDS)
    for order in SearchOrder:
        stages = pipeline(text, scope, hostile, order, SearchCursor(1.0, HOSTILE_IDS[2]))
        # No field name or operator comes from the user: every key is one the code writes.
        assert _keys(stages) <= _reference_keys()
        for path, value in _leaves(stages):
            if not (isinstance(value, str) and MARK in value):
                continue
            # Words are `query` values of text/phrase/wildcard; ids and filter values are
            # `value`s of equals/in, or literals compared in $match (never expressions).
            assert path[-1] in {"query", "value", "$in", "$eq", "$lt", "$gt"}, path
            assert path[0] in {"$search", "$unionWith", "$match"}, path
            if path[-1] == "query" and path[-2] == "wildcard":
                assert value.endswith("*") and "\\" not in value


# Results


def test_a_snippet_marks_the_hits_escapes_and_cuts() -> None:
    title = [
        {
            "path": "title",
            "score": 1.5,
            "texts": [
                {"value": "Router", "type": "hit"},
                {"value": " <b>shopping</b> list", "type": "text"},
            ],
        }
    ]
    assert highlight_snippet(title, lambda p: p == "title") == (
        "<mark>Router</mark> &lt;b&gt;shopping&lt;/b&gt; list"
    )
    words = " ".join(f"w{i}" for i in range(40))
    long = [
        {
            "path": "content",
            "score": 0.5,
            "texts": [
                {"value": words + " ", "type": "text"},
                {"value": "router", "type": "hit"},
                {"value": " " + words, "type": "text"},
            ],
        }
    ]
    snippet = highlight_snippet(long)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "<mark>router</mark>" in snippet
    assert len(snippet.split()) <= 17


def test_the_snippet_is_the_best_passage_of_the_turn_text() -> None:
    highlights = [
        {"path": "chat_app_id", "score": 9.0, "texts": [{"value": "support", "type": "hit"}]},
        {"path": "content", "score": 1.0, "texts": [{"value": "a router", "type": "text"}]},
        {
            "path": "tool_invocations.output.body",
            "score": 2.0,
            "texts": [{"value": "router", "type": "hit"}],
        },
        {
            "path": "content",
            "score": 0.5,
            "texts": [{"value": "the ", "type": "text"}, {"value": "router", "type": "hit"}],
        },
    ]
    assert highlight_snippet(highlights) == "<mark>router</mark>"
    assert highlight_snippet([]) == ""
    assert highlight_snippet(None) == ""


def test_pipeline_output_becomes_hits() -> None:
    session = make_session(title="Router <list>")
    doc = {
        "_id": session.id,
        "best": 3.25,
        "sort_key": -3.25,
        "session": codec.session_doc(session),
        "title_highlights": [
            {
                "path": "title",
                "score": 1.0,
                "texts": [{"value": "Router", "type": "hit"}, {"value": " <list>", "type": "text"}],
            }
        ],
        "turns": [
            {
                "turn_id": "t2",
                "seq": 2,
                "role": "ASSISTANT",
                "score": 3.25,
                "title": False,
                "highlights": [
                    {"path": "content", "score": 1.0, "texts": [{"value": "router", "type": "hit"}]}
                ],
            },
            {
                "turn_id": "t1",
                "seq": 1,
                "role": "USER",
                "score": 1.0,
                "title": False,
                "highlights": [],
            },
        ],
    }
    (hit,) = hits_from([doc])
    assert hit.session == session
    assert (hit.score, hit.sort_key) == (-3.25, -3.25)
    assert hit.title_snippet == "<mark>Router</mark> &lt;list&gt;"
    assert [(t.turn_id, t.seq, t.role, t.snippet, t.score) for t in hit.turns] == [
        ("t2", 2, TurnRole.ASSISTANT, "<mark>router</mark>", -3.25),
        ("t1", 1, TurnRole.USER, "", -1.0),
    ]
    no_title = hits_from([{**doc, "title_highlights": None}])[0]
    assert no_title.title_snippet is None
    matched_unmarked = hits_from([{**doc, "title_highlights": []}])[0]
    assert matched_unmarked.title_snippet == "Router &lt;list&gt;"


# The store and the setting


class _Cursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self._docs = docs

    async def to_list(self, length: int | None) -> list[dict[str, Any]]:
        return self._docs


class _Collection:
    def __init__(self, calls: list[tuple[str, list[dict[str, Any]]]], name: str) -> None:
        self._calls, self._name = calls, name

    def aggregate(self, stages: list[dict[str, Any]]) -> _Cursor:
        self._calls.append((self._name, stages))
        return _Cursor([])


class _Client:
    """Stands in for a Motor client: records what is aggregated on which collection."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []

    def __getitem__(self, database: str) -> Any:
        client = self

        class _Database:
            def __getitem__(self, name: str) -> _Collection:
                return _Collection(client.calls, name)

        return _Database()

    def close(self) -> None:
        pass


async def test_the_atlas_store_runs_the_pipeline_on_turns() -> None:
    client = _Client()
    store = MongoStore(client, "db", redact=redact_details, transactions=False, search_mode="atlas")
    query = parse_query("router -modem")
    assert (
        await store.search(SearchRequest(query, ALICE, SearchFilter(), SearchOrder.NEWEST, None, 5))
        == []
    )
    expected = search_pipeline(
        SearchRequest(query, ALICE, SearchFilter(), SearchOrder.NEWEST, None, 5)
    )
    assert client.calls == [("turns", expected)]
    # Nothing can match: nothing is sent.
    assert (
        await store.search(
            SearchRequest(parse_query("router"), ALICE, SearchFilter(), SearchOrder.NEWEST, None, 0)
        )
        == []
    )
    assert len(client.calls) == 1


def test_an_unknown_search_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="search_mode"):
        MongoStore(_Client(), "db", redact=redact_details, search_mode="text")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "stems"), ("stems", "stems"), ("atlas", "atlas")]
)
async def test_the_setting_chooses_the_search(
    monkeypatch: pytest.MonkeyPatch, value: str | None, mode: str
) -> None:
    from sessionhub.server.app import build_store

    monkeypatch.setenv("SESSIONHUB_DATABASE_URL", "mongodb://127.0.0.1:1/chats")
    if value is None:
        monkeypatch.delenv("SESSIONHUB_MONGO_SEARCH", raising=False)
    else:
        monkeypatch.setenv("SESSIONHUB_MONGO_SEARCH", value)
    store = build_store(load_settings())
    try:
        assert isinstance(store, MongoStore)
        assert store.search_mode == mode
    finally:
        await store.close()


def test_an_unknown_search_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONHUB_MONGO_SEARCH", "text")
    with pytest.raises(SettingsError, match="SESSIONHUB_MONGO_SEARCH"):
        load_settings()


async def test_the_unused_text_indexes_are_dropped_and_dropping_again_is_harmless(
    mongo_database_url: str, mongo_database: str
) -> None:
    client = connect(mongo_database_url)
    db = client[mongo_database]
    await db[indexes.TURNS].create_index(
        [("entity_id", 1), ("content", 1)], name="turns_content_text"
    )
    await db[indexes.SESSIONS].create_index(
        [("entity_id", 1), ("title", 1)], name="sessions_title_text"
    )
    try:
        await indexes.ensure(db)
        await indexes.ensure(db)
        for collection, name in indexes.RETIRED_INDEXES:
            assert name not in await db[collection].index_information()
        assert "turns_terms_by_entity" in await db[indexes.TURNS].index_information()
    finally:
        client.close()
