"""exportSessions: what the caller may read, one result per id, every export audited."""

from __future__ import annotations

import base64

from sessionhub.domain.models import Role

EXPORT = """
mutation($ids: [ID!]!, $format: ExportFormat!) {
  exportSessions(ids: $ids, format: $format) {
    format fileName mediaType contentBase64 text results { id status message }
  }
}"""
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { session { id } } }"


def start(caller, text: str) -> str:
    return caller.ok(SEND, {"i": {"chatAppId": "knowledge", "content": text}})["sendMessage"][
        "session"
    ]["id"]


def test_export_returns_readable_sessions_and_a_result_per_id(api) -> None:
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    mine = start(alice, "Notes about the quarterly review")
    theirs = start(bob, "Bob's private plans")
    export = alice.ok(EXPORT, {"ids": [mine, theirs, "nope", mine], "format": "MARKDOWN"})[
        "exportSessions"
    ]
    assert [(r["id"], r["status"]) for r in export["results"]] == [
        (mine, "DONE"),
        (theirs, "NOT_FOUND"),
        ("nope", "NOT_FOUND"),
    ]
    assert "Notes about the quarterly review" in export["text"]
    assert "Bob's private plans" not in export["text"]
    assert base64.b64decode(export["contentBase64"]).decode() == export["text"]
    assert export["fileName"].endswith(".md") and export["mediaType"].startswith("text/markdown")


def test_binary_formats_have_no_text(api) -> None:
    alice = api.as_("alice", "acme")
    sid = start(alice, "hello")
    for fmt, magic in (("PDF", b"%PDF-"), ("DOCX", b"PK")):
        export = alice.ok(EXPORT, {"ids": [sid], "format": fmt})["exportSessions"]
        assert export["text"] is None
        assert base64.b64decode(export["contentBase64"]).startswith(magic)


def test_exports_are_audited_and_limits_hold(api) -> None:
    alice = api.as_("alice", "acme")
    sid = start(alice, "to be exported")
    alice.ok(EXPORT, {"ids": [sid], "format": "JSON"})
    auditor = api.as_("aud", "acme", Role.AUDITOR)
    events = auditor.ok(
        'query($s: ID!) { auditLog(filter: {sessionId: $s, action: "session.exported"}) '
        "{ edges { node { actorId details } } } }",
        {"s": sid},
    )["auditLog"]["edges"]
    assert [(e["node"]["actorId"], e["node"]["details"]["format"]) for e in events] == [
        ("alice", "JSON")
    ]
    assert alice.error_code(EXPORT, {"ids": [], "format": "JSON"}) == "BAD_USER_INPUT"
    too_many = [f"id-{i}" for i in range(1001)]
    assert alice.error_code(EXPORT, {"ids": too_many, "format": "JSON"}) == "BAD_USER_INPUT"
    assert alice.error_code(EXPORT, {"ids": [sid], "format": "EXCEL"}) == "BAD_USER_INPUT"
