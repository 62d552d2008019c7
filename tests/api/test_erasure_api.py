"""Right to erasure as people see it: an admin erases bob of acme; afterwards nothing bob
wrote can be found through the API, in search, or in the bytes of the SQLite files, while
alice's own words and conversation stay whole and the audit trail keeps its events (with
their personal content removed) plus one that records the erasure."""

from __future__ import annotations

import json

from sessionhub.domain.audit import audit_event
from sessionhub.domain.erasure import redact_details
from sessionhub.domain.models import Principal, Role, UserType
from sessionhub.server.settings import Settings
from tests.conftest import Api, Caller, audit_events, database_bytes

ERASE = """mutation($u: ID!) { eraseUserData(userId: $u) { userId erasedAt auditEventId
  sessions sessionTurns authoredTurns feedback pins shares linkVisits participations
  auditEvents } }"""
SEND = """mutation($input: SendMessageInput!) { sendMessage(input: $input) {
  session { id } turn { id seq } } }"""
APPEND = "mutation($input: AppendTurnInput!) { appendTurn(input: $input) { id seq } }"
SHARE = """mutation($input: ShareInput!) { shareSession(input: $input) { id linkToken } }"""
SESSION = """query($id: ID!) { session(id: $id) { id participants turnCount
  turns(first: 100) { nodes { seq authorId content metadata toolInvocations { name input }
  feedback { userId comment } } } } }"""
SEARCH = (
    """query($q: String!) { searchSessions(query: $q) { edges { node { session { id } } } } }"""
)
# Words of bob's that appear nowhere else; porter stemming leaves each as it is.
BOB_MESSAGE = "Zorblaxian quindlewhisk ledger for the audit"
BOB_TOOL_PAYLOAD = "vextrognal"
BOB_TITLE = "Plumtrevor grievance notes"
BOB_TAG = "snorkelwimbly"
BOB_COMMENT = "Flibbertorque was wrong"
BOB_REPLY = "Ganderquoff reply from bob"
BOB_LONG = "Haskelwrath " * 800  # overflows a page: lives on overflow pages
BOB_WORDS = [
    "Zorblaxian",
    "quindlewhisk",
    BOB_TOOL_PAYLOAD,
    "Plumtrevor",
    BOB_TAG,
    "Flibbertorque",
    "Ganderquoff",
    "Haskelwrath",
]
ALICE_MESSAGE = "Alice keeps her marmalade recipe"


def bytes_hold(settings: Settings, word: str) -> bool:
    data = database_bytes(settings)
    # The index keeps words folded to lower case; the tables keep them as written.
    return word.encode() in data or word.lower().encode() in data


def found(caller: Caller, word: str) -> set[str]:
    edges = caller.ok(SEARCH, {"q": word})["searchSessions"]["edges"]
    return {e["node"]["session"]["id"] for e in edges}


class World:
    """alice and bob of acme, each with a session the other takes part in."""

    def __init__(self, api: Api) -> None:
        self.alice = api.as_("alice", "acme")
        self.bob = api.as_("bob", "acme")
        self.admin = api.as_("root", "acme", Role.ADMIN)
        self.agent = api.as_("agent", "acme", Role.SERVICE)
        self.alice_session = self.alice.ok(
            SEND, {"input": {"chatAppId": "knowledge", "content": ALICE_MESSAGE}}
        )["sendMessage"]["session"]["id"]
        alice_answer = self.agent.ok(
            APPEND,
            {
                "input": {
                    "sessionId": self.alice_session,
                    "role": "ASSISTANT",
                    "content": "Alice's marmalade answer",
                }
            },
        )["appendTurn"]["id"]
        self.alice.ok(
            SHARE,
            {
                "input": {
                    "sessionId": self.alice_session,
                    "granteeKind": "USER",
                    "userId": "bob",
                    "mode": "INTERACT",
                }
            },
        )
        link = self.alice.ok(
            SHARE, {"input": {"sessionId": self.alice_session, "granteeKind": "LINK"}}
        )["shareSession"]["linkToken"]
        self.bob.ok("query($t: String!) { sessionByShareLink(token: $t) { id } }", {"t": link})
        self.bob.ok(
            SEND,
            {"input": {"sessionId": self.alice_session, "content": BOB_REPLY}},
        )
        self.bob.ok(
            """mutation($t: ID!, $c: String!) { addFeedback(turnId: $t,
               input: {kind: THUMBS_DOWN, comment: $c}) { id } }""",
            {"t": alice_answer, "c": BOB_COMMENT},
        )
        self.bob.ok("mutation($id: ID!) { pinSession(id: $id) { id } }", {"id": self.alice_session})

        self.bob_session = self.bob.ok(
            SEND, {"input": {"chatAppId": "knowledge", "content": BOB_MESSAGE}}
        )["sendMessage"]["session"]["id"]
        self.bob.ok(
            APPEND,
            {
                "input": {
                    "sessionId": self.bob_session,
                    "content": BOB_LONG,
                    "toolInvocations": [
                        {"name": "lookup", "input": {"q": BOB_TOOL_PAYLOAD}, "output": [1, 2]}
                    ],
                }
            },
        )
        self.bob.ok(
            "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }",
            {"id": self.bob_session, "t": BOB_TITLE},
        )
        self.bob.ok(
            "mutation($id: ID!, $tag: String!) { tagSessions(ids: [$id], add: [$tag]) "
            "{ results { status } } }",
            {"id": self.bob_session, "tag": BOB_TAG},
        )
        self.bob.ok(
            SHARE,
            {"input": {"sessionId": self.bob_session, "granteeKind": "USER", "userId": "alice"}},
        )
        self.alice.ok("query($id: ID!) { session(id: $id) { id } }", {"id": self.bob_session})
        self.alice.ok("mutation($id: ID!) { pinSession(id: $id) { id } }", {"id": self.bob_session})


def test_erasure_leaves_nothing_of_bob_and_all_of_alice(api: Api, settings: Settings) -> None:
    w = World(api)
    assert found(w.admin, "quindlewhisk") == {w.bob_session}
    assert found(w.alice, "ganderquoff") == {w.alice_session}
    for word in BOB_WORDS:
        assert bytes_hold(settings, word), f"{word} should be on disk before the erasure"

    report = w.admin.ok(ERASE, {"u": "bob"})["eraseUserData"]

    assert report["userId"] == "bob"
    assert {k: v for k, v in report.items() if isinstance(v, int)} == {
        "sessions": 1,
        "sessionTurns": 2,
        "authoredTurns": 1,
        "feedback": 1,
        "pins": 1,
        "shares": 1,
        "linkVisits": 1,
        "participations": 1,
        "auditEvents": report["auditEvents"],
    }
    # On his session: share.created, session.renamed, session.tagged; on hers: share.opened,
    # session.read.
    assert report["auditEvents"] == 5

    # Not through the API.
    assert w.alice.ok(SESSION, {"id": w.bob_session}) == {"session": None}
    assert w.admin.ok(SESSION, {"id": w.bob_session}) == {"session": None}
    assert w.alice.ok("{ sharedWithMe { edges { node { id } } } }")["sharedWithMe"]["edges"] == []
    assert w.alice.ok("{ pinnedSessions { id } }")["pinnedSessions"] == []
    assert w.bob.ok("{ sessions(filter: {archived: null}) { edges { node { id } } } }") == {
        "sessions": {"edges": []}
    }
    assert w.bob.ok("{ pinnedSessions { id } }") == {"pinnedSessions": []}
    assert w.bob.ok("{ sharedWithMe { edges { node { id } } } }")["sharedWithMe"]["edges"] == []
    assert w.bob.ok(SESSION, {"id": w.alice_session}) == {"session": None}
    assert w.bob.ok("{ myTags { tag } }") == {"myTags": []}

    # Alice's conversation keeps its shape and her words; bob's turn is an empty slot.
    session = w.alice.ok(SESSION, {"id": w.alice_session})["session"]
    turns = session["turns"]["nodes"]
    assert [t["seq"] for t in turns] == [1, 2, 3] and session["turnCount"] == 3
    assert turns[0]["content"] == ALICE_MESSAGE and turns[0]["authorId"] == "alice"
    assert turns[1]["content"] == "Alice's marmalade answer" and turns[1]["feedback"] == []
    assert turns[2]["authorId"] == "erased" and turns[2]["content"] == ""
    assert set(turns[2]["metadata"]) == {"erasedAt"}
    assert "bob" not in session["participants"]
    assert found(w.alice, "marmalade") == {w.alice_session}

    # Not in search.
    for word in ("zorblaxian", "quindlewhisk", "plumtrevor", "ganderquoff", BOB_TOOL_PAYLOAD):
        assert found(w.admin, word) == set()
        assert found(w.alice, word) == set()

    # Not in the bytes of the database files.
    for word in BOB_WORDS:
        assert not bytes_hold(settings, word), f"{word} is still in the database files"
    assert bytes_hold(settings, "marmalade")

    # The audit trail keeps its events without bob's words, and records the erasure.
    events = audit_events(w.admin, page_size=100)
    assert BOB_TAG not in json.dumps(events)
    erasures = [
        {key: e[key] for key in ("actorId", "action", "target", "details")}
        for e in events
        if e["action"] == "user.erased"
    ]
    assert erasures == [
        {
            "actorId": "root",
            "action": "user.erased",
            "target": "user:bob",
            "details": {
                "sessions": 1,
                "session_turns": 2,
                "authored_turns": 1,
                "feedback": 1,
                "pins": 1,
                "shares": 1,
                "link_visits": 1,
                "participations": 1,
                "audit_events": report["auditEvents"],
                # Alice's generated title was made while his reply was in her session.
                "titles": 1,
            },
        }
    ]
    tagged = [e for e in events if e["action"] == "session.tagged"]
    assert tagged and all(e["details"] == {"redacted": True} for e in tagged)
    deleted = [e for e in events if e["action"] == "session.deleted"]
    assert [(e["actorId"], e["target"], e["details"]["reason"]) for e in deleted] == [
        ("root", f"session:{w.bob_session}", "erasure")
    ]
    assert any(e["action"] == "share.created" and e["actorId"] == "bob" for e in events)


def test_running_erasure_again_finds_nothing_more(api: Api) -> None:
    w = World(api)
    first = w.admin.ok(ERASE, {"u": "bob"})["eraseUserData"]
    second = w.admin.ok(ERASE, {"u": "bob"})["eraseUserData"]
    assert first["sessions"] == 1
    counts = {k: v for k, v in second.items() if isinstance(v, int)}
    assert set(counts.values()) == {0}
    assert second["auditEventId"] != first["auditEventId"]
    assert w.alice.ok(SESSION, {"id": w.alice_session})["session"]["turnCount"] == 3


def test_an_interrupted_erasure_is_finished_by_running_it_again(api: Api) -> None:
    """The first run stops after deleting one of bob's two sessions (as if the process
    died); the second finishes the rest and counts only what it removed itself."""
    w = World(api)
    second_session = w.bob.ok(SEND, {"input": {"chatAppId": "support", "content": "Zorblaxian"}})[
        "sendMessage"
    ]["session"]["id"]
    components = api.client.app.state.components

    root = Principal("root", "acme", UserType.INTERNAL, frozenset({Role.ADMIN}))

    async def first_batch_only() -> None:
        await components.store.erase_sessions(
            [second_session],
            lambda s: audit_event(root, s, "session.deleted", components.services.clock.now()),
            redact_details,
        )

    api.client.portal.call(first_batch_only)
    report = w.admin.ok(ERASE, {"u": "bob"})["eraseUserData"]
    assert report["sessions"] == 1 and report["authoredTurns"] == 1
    assert w.admin.ok(SESSION, {"id": second_session}) == {"session": None}
    assert w.admin.ok(SESSION, {"id": w.bob_session}) == {"session": None}
    assert found(w.admin, "zorblaxian") == set()


def test_erasure_stays_inside_the_admins_entity(api: Api) -> None:
    w = World(api)
    other_admin = api.as_("root", "globex", Role.ADMIN)
    report = other_admin.ok(ERASE, {"u": "bob"})["eraseUserData"]
    assert {k: v for k, v in report.items() if isinstance(v, int)} == dict.fromkeys(
        [
            "sessions",
            "sessionTurns",
            "authoredTurns",
            "feedback",
            "pins",
            "shares",
            "linkVisits",
            "participations",
            "auditEvents",
        ],
        0,
    )
    assert w.bob.ok(SESSION, {"id": w.bob_session})["session"]["turnCount"] == 2
    assert found(w.admin, "quindlewhisk") == {w.bob_session}
    # Its record lives in globex's trail, not acme's.
    assert not [e for e in audit_events(w.admin, page_size=100) if e["action"] == "user.erased"]
    assert [
        e["target"]
        for e in audit_events(other_admin, page_size=100)
        if e["action"] == "user.erased"
    ] == ["user:bob"]


def test_only_admins_erase_and_bad_ids_are_refused(api: Api) -> None:
    w = World(api)
    for caller in (
        w.alice,
        w.bob,
        api.as_("ea", "acme", Role.ENTITY_ADMIN),
        api.as_("aud", "acme", Role.AUDITOR),
        w.agent,
    ):
        assert caller.error_code(ERASE, {"u": "bob"}) == "FORBIDDEN"
    assert w.admin.error_code(ERASE, {"u": ""}) == "BAD_USER_INPUT"
    assert w.admin.error_code(ERASE, {"u": "x" * 500}) == "BAD_USER_INPUT"
    assert w.bob.ok(SESSION, {"id": w.bob_session})["session"]["turnCount"] == 2


def test_deleting_a_session_removes_its_text_from_the_files(api: Api, settings: Settings) -> None:
    alice = api.as_("alice", "acme")
    sid = alice.ok(SEND, {"input": {"chatAppId": "support", "content": "Cromulentwhistle plan"}})[
        "sendMessage"
    ]["session"]["id"]
    keep = alice.ok(SEND, {"input": {"chatAppId": "support", "content": "Embiggenfest plan"}})[
        "sendMessage"
    ]["session"]["id"]
    assert bytes_hold(settings, "Cromulentwhistle")
    assert alice.ok("mutation($id: ID!) { deleteSession(id: $id) }", {"id": sid})
    assert not bytes_hold(settings, "Cromulentwhistle")
    assert bytes_hold(settings, "Embiggenfest")
    assert found(alice, "embiggenfest") == {keep}
