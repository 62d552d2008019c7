"""searchSessions as people use it: what they may read, fresh, any input survives."""

from __future__ import annotations

import itertools
import random

import pytest
from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Role
from sessionhub.server.app import create_app
from sessionhub.server.chat_apps import load_chat_apps
from sessionhub.server.errors import SettingsError
from sessionhub.server.settings import token_config
from tests.conftest import Api

SEARCH = """
query($q: String!, $f: SearchFilter, $order: SearchOrder, $first: Int, $after: String) {
  searchSessions(query: $q, filter: $f, orderBy: $order, first: $first, after: $after) {
    edges { cursor node { session { id title } score titleSnippet turns { seq role snippet } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { session { id } } }"
SHARE = "mutation($i: ShareInput!) { shareSession(input: $i) { id linkToken } }"


def start(caller, text: str, app: str = "knowledge") -> str:
    return caller.ok(SEND, {"i": {"chatAppId": app, "content": text}})["sendMessage"]["session"][
        "id"
    ]


def hits(caller, query: str, **variables) -> list[str]:
    data = caller.ok(SEARCH, {"q": query, **variables})["searchSessions"]
    return [e["node"]["session"]["id"] for e in data["edges"]]


def test_hits_are_grouped_by_session_with_marked_snippets(api) -> None:
    alice = api.as_("alice", "acme")
    sid = start(alice, "The <b>espresso</b> machine leaks")
    alice.ok(
        'mutation($s: ID!) { appendTurn(input: {sessionId: $s, content: "Descale the espresso '
        'machine monthly"}) { id } }',
        {"s": sid},
    )
    (edge,) = alice.ok(SEARCH, {"q": "espresso"})["searchSessions"]["edges"]
    node = edge["node"]
    assert node["session"]["id"] == sid
    assert [t["seq"] for t in node["turns"]] and len(node["turns"]) == 2
    snippets = " ".join(t["snippet"] for t in node["turns"])
    assert "<mark>espresso</mark>" in snippets
    assert "&lt;b&gt;" in snippets and "<b>" not in snippets


def test_scope_never_leaks_across_entities_shares_or_deletions(api) -> None:
    alice, bob, carol = api.as_("alice", "acme"), api.as_("bob", "acme"), api.as_("carol", "acme")
    mallory = api.as_("mallory", "globex", Role.ADMIN, Role.USER)
    word = "kumquat"
    alices = start(alice, f"{word} recipes")
    bobs_revoked = start(bob, f"{word} orchard")
    bobs_live = start(bob, f"{word} jam")
    deleted = start(alice, f"{word} deleted notes")
    start(mallory, f"{word} at globex")
    share = bob.ok(
        SHARE, {"i": {"sessionId": bobs_revoked, "granteeKind": "USER", "userId": "alice"}}
    )
    bob.ok(SHARE, {"i": {"sessionId": bobs_live, "granteeKind": "USER", "userId": "alice"}})
    bob.ok(
        "mutation($id: ID!) { revokeShare(id: $id) { id } }", {"id": share["shareSession"]["id"]}
    )
    alice.ok("mutation($id: ID!) { deleteSession(id: $id) }", {"id": deleted})

    filters = [
        None,
        {"includeArchived": True},
        {"chatAppIds": ["knowledge", "support"]},
        {"participants": ["bob", "alice", "mallory"]},
        {"roles": ["USER", "ASSISTANT", "TOOL", "SYSTEM"]},
        {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
    ]
    for f, order in itertools.product(filters, ("RELEVANCE", "NEWEST")):
        assert set(hits(alice, word, f=f, order=order)) == {alices, bobs_live}, (f, order)
        assert hits(carol, word, f=f, order=order) == [], (f, order)
        assert set(hits(mallory, word, f=f, order=order)).isdisjoint(
            {alices, bobs_live, bobs_revoked, deleted}
        )
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    assert set(hits(auditor, word)) == {alices, bobs_live, bobs_revoked}


def test_changes_show_in_search_when_the_mutation_returns(api) -> None:
    alice = api.as_("alice", "acme")
    sid = start(alice, "planning the offsite")
    alice.ok(
        'mutation($s: ID!) { appendTurn(input: {sessionId: $s, content: "book the lighthouse"}) '
        "{ id } }",
        {"s": sid},
    )
    assert hits(alice, "lighthouse") == [sid]
    alice.ok(
        'mutation($s: ID!) { renameSession(id: $s, title: "Zanzibar trip") { id } }', {"s": sid}
    )
    assert hits(alice, "zanzibar") == [sid]
    alice.ok("mutation($s: ID!) { deleteSession(id: $s) }", {"s": sid})
    assert hits(alice, "lighthouse") == [] and hits(alice, "zanzibar") == []


def test_pagination_in_both_orders(api) -> None:
    alice = api.as_("alice", "acme")
    made = [start(alice, "walrus " * (i + 1)) for i in range(7)]
    for order in ("RELEVANCE", "NEWEST"):
        seen, after = [], None
        while True:
            data = alice.ok(SEARCH, {"q": "walrus", "order": order, "first": 3, "after": after})[
                "searchSessions"
            ]
            seen += [e["node"]["session"]["id"] for e in data["edges"]]
            if not data["pageInfo"]["hasNextPage"]:
                break
            after = data["pageInfo"]["endCursor"]
        assert sorted(seen) == sorted(made) and len(seen) == len(made), order
    assert hits(alice, "walrus", order="NEWEST") == made[::-1]


def test_any_input_gives_results_or_bad_user_input(api) -> None:
    alice = api.as_("alice", "acme")
    start(alice, 'odd "quoted" text with AND, OR, NOT and NEAR(a b) * - ^ : ( )')
    rng = random.Random(7)
    alphabet = "ab \"*-^:()+{}[]\\/'.,;!?~&|<>@#$%éü\u00a0\t\n" + "ANDORNOTNEAR"
    # Scripts, marks on nothing, joiners and emoji parts: cut into tokens like any text.
    alphabet += "北京の図書館ภาษาहिन्दीكِتَاب\u0301\u093c\u200d\ufe0f🚀👍🏽🇩🇪＋＃_"
    queries = ['"', '""', "-", "*", "a*", "-a", '-"a b"', "NEAR(", "a:b", "\\", "(((", "é*"]
    queries += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(150)
    ]
    for query in queries:
        body = alice.post(SEARCH, {"q": query})
        if body.get("errors"):
            assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (query, body)
        else:
            assert isinstance(body["data"]["searchSessions"]["edges"], list), query
    assert alice.error_code(SEARCH, {"q": "x" * 501}) == "BAD_USER_INPUT"
    assert alice.error_code(SEARCH, {"q": "word", "after": "garbage"}) == "BAD_USER_INPUT"


def test_people_search_in_their_own_script_and_with_emoji(api) -> None:
    alice = api.as_("alice", "acme")
    beijing = start(alice, "我喜欢吃苹果，也经常在北京的图书馆学习人工智能")
    launch = start(alice, "Launch day 🚀 went well")
    (edge,) = alice.ok(SEARCH, {"q": "图书馆"})["searchSessions"]["edges"]
    assert edge["node"]["session"]["id"] == beijing
    assert "的<mark>图书馆</mark>学习" in edge["node"]["turns"][0]["snippet"]
    assert hits(alice, "🚀") == [launch]
    body = alice.post(SEARCH, {"q": "!!! ???"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at least one word" in body["errors"][0]["message"]


def test_a_chat_app_that_names_its_language_has_even_short_turns_stemmed(
    settings_factory, tmp_path
) -> None:
    """Two words are too few to tell their language: they are folded, not stemmed. A chat
    app whose `languages` names German has them stemmed in German."""
    apps = tmp_path / "apps.toml"
    apps.write_text(
        '[[chat_apps]]\nid = "berlin"\nname = "Berlin"\n'
        '[chat_apps.settings]\nlanguages = ["de"]\n'
        '[[chat_apps]]\nid = "anywhere"\nname = "Anywhere"\n'
    )
    with TestClient(create_app(settings_factory(chat_apps_file=apps))) as client:
        settings = settings_factory(chat_apps_file=apps)
        api = Api(client, TokenIssuer(token_config(settings)))
        alice = api.as_("alice", "acme")
        german = start(alice, "Alte Häuser", app="berlin")
        unknown = start(alice, "Neue Bäume", app="anywhere")
        assert hits(alice, "Haus") == [german]
        assert hits(alice, "Baum") == []
        assert hits(alice, "Bäume") == [unknown]
        apps_settings = alice.ok("{ chatApps { id settings { languages } } }")["chatApps"]
        assert {a["id"]: a["settings"]["languages"] for a in apps_settings} == {
            "berlin": ["de"],
            "anywhere": [],
        }


def test_an_unknown_language_stops_the_start_naming_the_setting(tmp_path) -> None:
    apps = tmp_path / "apps.toml"
    apps.write_text(
        '[[chat_apps]]\nid = "x"\nname = "X"\n[chat_apps.settings]\nlanguages = ["klingon"]\n'
    )
    with pytest.raises(SettingsError, match=r"SESSIONHUB_CHAT_APPS_FILE.*languages.*klingon"):
        load_chat_apps(apps)
