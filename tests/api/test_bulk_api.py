"""Tags, bulk archive and delete, session status: each id its own result, one bad id never
stops the others, every change audited, nothing of another person's touched."""

from __future__ import annotations

from sessionhub.domain.models import Role

CREATE = """
mutation($t: String!, $tags: [String!], $app: ID!) {
  createSession(input: {chatAppId: $app, title: $t, tags: $tags}) { id }
}"""
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { session { id } } }"
TAG = """
mutation($ids: [ID!]!, $add: [String!], $remove: [String!]) {
  tagSessions(ids: $ids, add: $add, remove: $remove) {
    results { id status message } sessions { id tags updatedAt }
  }
}"""
ARCHIVE = """
mutation($ids: [ID!]!) {
  bulkArchive(ids: $ids) { results { id status message } sessions { id archived } }
}"""
DELETE = """
mutation($ids: [ID!]!) {
  bulkDelete(ids: $ids) { results { id status message } sessions { id } }
}"""
MY_TAGS = "query($first: Int) { myTags(first: $first) { tag count } }"
LIST_TAG = """
query($tag: String) {
  sessions(filter: {tag: $tag, archived: null}, first: 100) { edges { node { id tags } } }
}"""
SEARCH = """
query($q: String!, $f: SearchFilter) {
  searchSessions(query: $q, filter: $f, first: 50) { edges { node { session { id } } } }
}"""
SESSION = "query($id: ID!) { session(id: $id) { id status archived tags } }"
COMPLETE = "mutation($id: ID!) { completeSession(id: $id) { id status } }"
REOPEN = "mutation($id: ID!) { reopenSession(id: $id) { id status } }"
AUDIT = """
query($s: ID!, $a: String!) {
  auditLog(filter: {sessionId: $s, action: $a}) { edges { node { actorId details } } }
}"""
SHARE = """
mutation($s: ID!, $u: ID!, $m: ShareMode!) {
  shareSession(input: {sessionId: $s, granteeKind: USER, userId: $u, mode: $m}) { id }
}"""


def create(caller, title: str, tags: list[str] | None = None, app: str = "support") -> str:
    variables = {"t": title, "tags": tags, "app": app}
    return caller.ok(CREATE, variables)["createSession"]["id"]


def start(caller, text: str) -> str:
    return caller.ok(SEND, {"i": {"chatAppId": "support", "content": text}})["sendMessage"][
        "session"
    ]["id"]


def statuses(result: dict) -> list[tuple[str, str]]:
    return [(r["id"], r["status"]) for r in result["results"]]


def audited(api, session_id: str, action: str) -> list[dict]:
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    edges = auditor.ok(AUDIT, {"s": session_id, "a": action})["auditLog"]["edges"]
    return [e["node"] for e in edges]


# Tags


def test_tagging_gives_each_id_its_own_result(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    one = create(alice, "One", ["Keep", "old"])
    two = create(alice, "Two")
    theirs = create(bob, "Bob's")
    result = alice.ok(
        TAG,
        {"ids": [one, theirs, "missing", two, one], "add": [" Billing ", "VIP"], "remove": ["OLD"]},
    )["tagSessions"]
    assert statuses(result) == [
        (one, "DONE"),
        (theirs, "NOT_FOUND"),
        ("missing", "NOT_FOUND"),
        (two, "DONE"),
    ]
    assert {s["id"]: s["tags"] for s in result["sessions"]} == {
        one: ["keep", "billing", "vip"],
        two: ["billing", "vip"],
    }
    assert bob.ok(SESSION, {"id": theirs})["session"]["tags"] == []
    # An invisible session answers exactly as a missing one does.
    messages = {r["id"]: r["message"] for r in result["results"]}
    assert messages[theirs].replace(theirs, "<id>") == messages["missing"].replace(
        "missing", "<id>"
    )


def test_tags_feed_the_listing_filter_search_and_my_tags(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    router = start(alice, "My router keeps dropping the line")
    other = start(alice, "The router in the office")
    create(bob, "Bob's", ["billing", "bobs"])
    alice.ok(TAG, {"ids": [router, other], "add": ["network"]})
    alice.ok(TAG, {"ids": [router], "add": ["billing"]})

    listed = alice.ok(LIST_TAG, {"tag": "billing"})["sessions"]["edges"]
    assert [e["node"]["id"] for e in listed] == [router]
    found = alice.ok(SEARCH, {"q": "router", "f": {"tags": ["billing"]}})["searchSessions"]
    assert [e["node"]["session"]["id"] for e in found["edges"]] == [router]

    assert alice.ok(MY_TAGS)["myTags"] == [
        {"tag": "network", "count": 2},
        {"tag": "billing", "count": 1},
    ]
    assert alice.ok(MY_TAGS, {"first": 1})["myTags"] == [{"tag": "network", "count": 2}]
    assert alice.error_code(MY_TAGS, {"first": 0}) == "BAD_USER_INPUT"

    alice.ok(TAG, {"ids": [router], "remove": ["billing"]})
    assert alice.ok(LIST_TAG, {"tag": "billing"})["sessions"]["edges"] == []
    found = alice.ok(SEARCH, {"q": "router", "f": {"tags": ["billing"]}})["searchSessions"]
    assert found["edges"] == []
    assert alice.ok(MY_TAGS)["myTags"] == [{"tag": "network", "count": 2}]


def test_tag_changes_are_audited_and_no_op_changes_are_not(api) -> None:
    alice = api.as_("alice", "acme")
    sid = create(alice, "Audited", ["a"])
    alice.ok(TAG, {"ids": [sid], "add": ["b"], "remove": ["a"]})
    alice.ok(TAG, {"ids": [sid], "add": ["b"]})  # already there: nothing changes
    events = audited(api, sid, "session.tagged")
    assert [(e["actorId"], e["details"]) for e in events] == [
        ("alice", {"added": ["b"], "removed": ["a"]})
    ]


def test_tag_input_is_checked_and_limits_are_per_id(api) -> None:
    alice = api.as_("alice", "acme")
    sid = create(alice, "Limits", [f"t{i}" for i in range(49)])
    roomy = create(alice, "Roomy")
    assert alice.error_code(TAG, {"ids": [sid]}) == "BAD_USER_INPUT"
    assert alice.error_code(TAG, {"ids": [sid], "add": ["  "]}) == "BAD_USER_INPUT"
    assert alice.error_code(TAG, {"ids": [sid], "add": ["x" * 65]}) == "BAD_USER_INPUT"
    assert alice.error_code(TAG, {"ids": [sid], "add": ["x"], "remove": ["X"]}) == (
        "BAD_USER_INPUT"
    )
    assert alice.error_code(TAG, {"ids": [], "add": ["x"]}) == "BAD_USER_INPUT"
    too_many = [f"id-{i}" for i in range(1001)]
    assert alice.error_code(TAG, {"ids": too_many, "add": ["x"]}) == "BAD_USER_INPUT"
    # Two more tags would make 51 on one session: that id is rejected, the other done.
    result = alice.ok(TAG, {"ids": [sid, roomy], "add": ["y", "z"]})["tagSessions"]
    assert statuses(result) == [(sid, "REJECTED"), (roomy, "DONE")]
    assert "50" in result["results"][0]["message"]


def test_a_reader_without_management_gets_forbidden(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    sid = create(alice, "Shared to read", app="knowledge")
    alice.ok(SHARE, {"s": sid, "u": "bob", "m": "READ"})
    for document, field in ((TAG, "tagSessions"), (ARCHIVE, "bulkArchive"), (DELETE, "bulkDelete")):
        variables = {"ids": [sid], "add": ["mine"]} if field == "tagSessions" else {"ids": [sid]}
        result = bob.ok(document, variables)[field]
        assert statuses(result) == [(sid, "FORBIDDEN")], field
        assert result["sessions"] == []
    session = alice.ok(SESSION, {"id": sid})["session"]
    assert (session["tags"], session["archived"]) == ([], False)


def test_a_thousand_ids_at_once(api) -> None:
    alice = api.as_("alice", "acme")
    real = [create(alice, f"S{i}") for i in range(3)]
    ids = real + [f"missing-{i}" for i in range(997)]
    result = alice.ok(TAG, {"ids": ids, "add": ["batch"]})["tagSessions"]
    assert len(result["results"]) == 1000
    assert [r["status"] for r in result["results"][:3]] == ["DONE"] * 3
    assert {r["status"] for r in result["results"][3:]} == {"NOT_FOUND"}


# Bulk archive and delete


def test_bulk_archive(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    one, two = create(alice, "One"), create(alice, "Two")
    theirs = create(bob, "Bob's")
    alice.ok("mutation($id: ID!) { archiveSession(id: $id) { id } }", {"id": two})
    result = alice.ok(ARCHIVE, {"ids": [one, theirs, two]})["bulkArchive"]
    assert statuses(result) == [(one, "DONE"), (theirs, "NOT_FOUND"), (two, "DONE")]
    assert all(s["archived"] for s in result["sessions"])
    assert bob.ok(SESSION, {"id": theirs})["session"]["archived"] is False
    # Archived already: DONE, but no second change on record.
    assert [e["actorId"] for e in audited(api, one, "session.archived")] == ["alice"]
    assert audited(api, two, "session.archived") == []


def test_bulk_delete_removes_sessions_and_their_search_rows(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    gone = start(alice, "Zebrafish husbandry notes")
    also = start(alice, "More zebrafish notes")
    theirs = start(bob, "Bob's zebrafish")
    result = alice.ok(DELETE, {"ids": [gone, theirs, "missing", also]})["bulkDelete"]
    assert statuses(result) == [
        (gone, "DONE"),
        (theirs, "NOT_FOUND"),
        ("missing", "NOT_FOUND"),
        (also, "DONE"),
    ]
    assert result["sessions"] == []
    for sid in (gone, also):
        assert alice.ok(SESSION, {"id": sid})["session"] is None
        [event] = audited(api, sid, "session.deleted")
        assert event["actorId"] == "alice"
    assert alice.ok(SEARCH, {"q": "zebrafish"})["searchSessions"]["edges"] == []
    found = bob.ok(SEARCH, {"q": "zebrafish"})["searchSessions"]["edges"]
    assert [e["node"]["session"]["id"] for e in found] == [theirs]
    # Deleting again: each id says it is gone, nothing fails.
    again = alice.ok(DELETE, {"ids": [gone]})["bulkDelete"]
    assert statuses(again) == [(gone, "NOT_FOUND")]


def test_an_admin_manages_the_entity_in_bulk(api) -> None:
    alice = api.as_("alice", "acme")
    sid = create(alice, "Alice's")
    admin = api.as_("root", "acme", Role.ADMIN)
    elsewhere = api.as_("root", "globex", Role.ADMIN)
    assert statuses(elsewhere.ok(ARCHIVE, {"ids": [sid]})["bulkArchive"]) == [(sid, "NOT_FOUND")]
    assert statuses(admin.ok(ARCHIVE, {"ids": [sid]})["bulkArchive"]) == [(sid, "DONE")]
    assert statuses(admin.ok(DELETE, {"ids": [sid]})["bulkDelete"]) == [(sid, "DONE")]


def test_bulk_roles(api) -> None:
    alice = api.as_("alice", "acme")
    sid = create(alice, "Alice's")
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    assert auditor.error_code(DELETE, {"ids": [sid]}) == "FORBIDDEN"
    assert auditor.error_code(TAG, {"ids": [sid], "add": ["x"]}) == "FORBIDDEN"
    service = api.as_("agent", "acme", Role.SERVICE)
    assert service.error_code(ARCHIVE, {"ids": [sid]}) == "FORBIDDEN"
    assert service.error_code(MY_TAGS) == "FORBIDDEN"


# Status


def test_owner_completes_and_reopens_with_an_audit_trail(api) -> None:
    alice = api.as_("alice", "acme")
    sid = create(alice, "Finish me")
    assert alice.ok(SESSION, {"id": sid})["session"]["status"] == "ACTIVE"
    assert alice.ok(COMPLETE, {"id": sid})["completeSession"]["status"] == "COMPLETED"
    assert alice.ok(COMPLETE, {"id": sid})["completeSession"]["status"] == "COMPLETED"
    assert alice.ok(SESSION, {"id": sid})["session"]["status"] == "COMPLETED"
    assert alice.ok(REOPEN, {"id": sid})["reopenSession"]["status"] == "ACTIVE"
    assert [e["actorId"] for e in audited(api, sid, "session.completed")] == ["alice"]
    assert [e["actorId"] for e in audited(api, sid, "session.reopened")] == ["alice"]


def test_the_entity_service_may_complete_others_may_not(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    sid = create(alice, "Agent work", app="knowledge")
    service = api.as_("agent", "acme", Role.SERVICE)
    assert service.ok(COMPLETE, {"id": sid})["completeSession"]["status"] == "COMPLETED"
    foreign = api.as_("agent", "globex", Role.SERVICE)
    assert foreign.error_code(REOPEN, {"id": sid}) == "NOT_FOUND"
    assert bob.error_code(REOPEN, {"id": sid}) == "NOT_FOUND"
    alice.ok(SHARE, {"s": sid, "u": "bob", "m": "INTERACT"})
    assert bob.error_code(REOPEN, {"id": sid}) == "FORBIDDEN"
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    assert auditor.error_code(REOPEN, {"id": sid}) == "FORBIDDEN"
    assert alice.ok(SESSION, {"id": sid})["session"]["status"] == "COMPLETED"
