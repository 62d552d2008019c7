"""Attacks on exportSessions (issue 20, points 2 and 8), through the real app with its
real pool of worker processes.

Point 8: a grantee with an INTERACT share writes characters XML 1.0 forbids into a shared
session; the owner's exports, of that session alone or with others, must still be made,
in every format, whole, saying what was replaced.
Point 2: an export costs what it holds, so it is weighed before it is made and stopped
past its time budget; an export over a budget answers LIMIT_EXCEEDED with the figures and
leaves no trace in the audit trail; aliases cannot make one request render many, and one
principal (one WebSocket runs up to 100 operations at once) cannot take every export the
server makes at once.
"""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from docx import Document as Docx
from pypdf import PdfReader
from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Role
from sessionhub.server.app import create_app
from sessionhub.server.settings import token_config
from tests.conftest import Api, Caller, audit_events

EXPORT = """mutation($ids: [ID!]!, $format: ExportFormat!) {
  exportSessions(ids: $ids, format: $format) {
    format fileName mediaType contentBase64 text results { id status message } } }"""
SEND = """mutation($i: SendMessageInput!) {
  sendMessage(input: $i) { session { id } turn { id } } }"""
SHARE = "mutation($i: ShareInput!) { shareSession(input: $i) { id } }"
FEEDBACK = """mutation($t: ID!, $c: String!) {
  addFeedback(turnId: $t, input: {kind: OTHER, comment: $c}) { id } }"""
FORMATS = ["MARKDOWN", "JSON", "PDF", "DOCX"]
# What XML 1.0 forbids, as the issue found it (a NUL the API refuses at the door).
PLANTED = "ring \x01 tab \x0b esc \x1b[31mred\x1b[0m nonchar \ufffe end"
ESCAPED = r"ring \x01 tab \x0b esc \x1b[31mred\x1b[0m nonchar \ufffe end"
COMMENT = "see \x1b]8;;https://evil.example\x07here"
ESCAPED_COMMENT = r"see \x1b]8;;https://evil.example\x07here"


@contextmanager
def app_with(settings_factory, **overrides: Any) -> Iterator[Api]:
    settings = settings_factory(**overrides)
    with TestClient(create_app(settings)) as client:
        yield Api(client, TokenIssuer(token_config(settings)))


def start(caller: Caller, text: str) -> tuple[str, str]:
    sent = caller.ok(SEND, {"i": {"chatAppId": "knowledge", "content": text}})["sendMessage"]
    return sent["session"]["id"], sent["turn"]["id"]


def say(caller: Caller, session_id: str, text: str) -> str:
    sent = caller.ok(SEND, {"i": {"sessionId": session_id, "content": text}})["sendMessage"]
    return sent["turn"]["id"]


def export(caller: Caller, ids: list[str], fmt: str) -> dict:
    return caller.ok(EXPORT, {"ids": ids, "format": fmt})["exportSessions"]


def refusal(caller: Caller, ids: list[str], fmt: str) -> str:
    """The message of an export that must answer LIMIT_EXCEEDED."""
    body = caller.post(EXPORT, {"ids": ids, "format": fmt})
    assert body.get("errors"), body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
    assert body.get("data") is None  # refused before anything ran
    return error["message"]


def readable(fmt: str, made: dict) -> str:
    """What a person reads in the exported document, whitespace as single spaces."""
    content = base64.b64decode(made["contentBase64"])
    if fmt == "DOCX":
        text = "\n".join(p.text for p in Docx(io.BytesIO(content)).paragraphs)
    elif fmt == "PDF":
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)
    else:
        text = content.decode("utf-8")
        assert made["text"] == text
    return " ".join(text.split())


def exported_events(api: Api) -> list[dict]:
    return audit_events(api.as_("aud", "acme", Role.AUDITOR), action="session.exported")


# Point 8


@pytest.fixture
def planted(api: Api) -> dict[str, str]:
    """Alice's sessions: two ordinary ones, and one shared with Bob (INTERACT), in which
    Bob writes a message and a feedback comment holding forbidden characters."""
    alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
    before, _ = start(alice, "Budget review: travel is 12% over plan.")
    shared, first = start(alice, "Draft the onboarding checklist.")
    api.as_("alice", "acme").ok(
        SHARE,
        {"i": {"sessionId": shared, "granteeKind": "USER", "userId": "bob", "mode": "INTERACT"}},
    )
    say(bob, shared, PLANTED)
    bob.ok(FEEDBACK, {"t": first, "c": COMMENT})
    after, _ = start(alice, "Hiring plan for Q3: two engineers, one designer.")
    return {"before": before, "shared": shared, "after": after}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_grantee_cannot_break_the_owners_exports_with_forbidden_characters(
    api: Api, planted: dict[str, str], fmt: str
) -> None:
    alice = api.as_("alice", "acme")
    alone = export(alice, [planted["shared"]], fmt)
    together = export(alice, [planted["before"], planted["shared"], planted["after"]], fmt)
    assert [r["status"] for r in together["results"]] == ["DONE"] * 3
    for made in (alone, together):
        text = readable(fmt, made)
        if fmt == "JSON":
            # Lossless: JSON carries these characters (as \u escapes).
            body = orjson.loads(base64.b64decode(made["contentBase64"]))
            contents = [t["content"] for s in body["sessions"] for t in s["turns"]]
            assert PLANTED in contents
            assert COMMENT in [
                f["comment"] for s in body["sessions"] for t in s["turns"] for f in t["feedback"]
            ]
            assert body["replacedCharacters"] == []
        else:
            assert ESCAPED in text and ESCAPED_COMMENT in text
            assert "Note: 7 characters that" in text
            for counted in ("U+0001 ×1 by \\x01", "U+0007 ×1 by \\x07", "U+000B ×1 by \\x0b"):
                assert counted in text
            assert "U+001B ×3 by \\x1b" in text and "U+FFFE ×1 by \\ufffe" in text
        assert "Draft the onboarding checklist." in text
    text = readable(fmt, together)
    assert "Budget review: travel is 12% over plan." in text
    assert "Hiring plan for Q3: two engineers, one designer." in text


# Point 2: budgets


def test_an_export_over_the_character_budget_is_refused_with_figures_and_not_audited(
    settings_factory,
) -> None:
    with app_with(settings_factory, export_max_chars=5_000) as api:
        alice = api.as_("alice", "acme")
        big, _ = start(alice, "x" * 3_000)
        say(alice, big, "y" * 3_000)
        small, _ = start(alice, "A short note.")
        message = refusal(alice, [small, big], "MARKDOWN")
        assert re.search(r"more than 5,000 characters \(at least 6,\d\d\d\)", message), message
        assert "Export fewer sessions" in message
        assert exported_events(api) == []
        assert export(alice, [small], "MARKDOWN")["results"][0]["status"] == "DONE"
        assert len(exported_events(api)) == 1


def test_a_pdf_has_a_smaller_character_budget_and_the_refusal_names_lighter_formats(
    settings_factory,
) -> None:
    with app_with(settings_factory, export_max_pdf_chars=4_000) as api:
        alice = api.as_("alice", "acme")
        sid, _ = start(alice, "z" * 5_000)
        message = refusal(alice, [sid], "PDF")
        assert "more than 4,000 characters" in message and "a PDF export" in message
        assert "MARKDOWN or JSON" in message
        for fmt in ("MARKDOWN", "JSON", "DOCX"):
            assert export(alice, [sid], fmt)["results"][0]["status"] == "DONE"


def test_an_export_over_the_turn_budget_is_refused_before_its_turns_are_read(
    settings_factory,
) -> None:
    with app_with(settings_factory, export_max_turns=3) as api:
        alice = api.as_("alice", "acme")
        one, _ = start(alice, "first")
        say(alice, one, "second")
        two, _ = start(alice, "third")
        say(alice, two, "fourth")
        message = refusal(alice, [one, two], "DOCX")
        assert "more than 3 turns (at least 4)" in message
        assert exported_events(api) == []


def test_a_document_over_the_byte_budget_is_refused_with_its_size(settings_factory) -> None:
    with app_with(settings_factory, export_max_bytes=1_024) as api:
        alice = api.as_("alice", "acme")
        sid, _ = start(alice, "€" * 600)  # 1,800 bytes of UTF-8, within the characters
        message = refusal(alice, [sid], "MARKDOWN")
        assert re.search(r"MARKDOWN document would be 2,\d\d\d bytes; the limit is 1,024", message)
        assert exported_events(api) == []


def test_a_render_past_its_time_budget_is_stopped_and_the_next_export_is_made(
    settings_factory,
) -> None:
    # A PDF of 300,000 characters takes seconds to lay out (~100,000 a second here): far
    # past a budget of half a second, well within the character budget.
    with app_with(settings_factory, export_time_budget_seconds=0.5) as api:
        alice = api.as_("alice", "acme")
        sid, _ = start(alice, "lorem ipsum dolor " * 5_500)
        say(alice, sid, "sit amet consectetur " * 4_700)
        say(alice, sid, "adipiscing elit sed " * 5_000)
        message = refusal(alice, [sid], "PDF")
        assert "stopped: it took longer than 0.5 seconds" in message
        assert "3 turns" in message and "MARKDOWN or JSON" in message
        assert exported_events(api) == []
        # Its worker was replaced: the next export is made.
        made = export(alice, [sid], "MARKDOWN")
        assert "sit amet consectetur" in made["text"]
        assert [e["details"]["format"] for e in exported_events(api)] == ["MARKDOWN"]


# Point 2: one export per request


def test_aliases_cannot_make_one_request_render_many_exports(api: Api) -> None:
    alice = api.as_("alice", "acme")
    sid, _ = start(alice, "The roadmap for next year.")
    fields = " ".join(
        f'e{i}: exportSessions(ids: ["{sid}"], format: {FORMATS[i % 4]}) {{ fileName }}'
        for i in range(20)
    )
    body = alice.post(f"mutation {{ {fields} }}")
    assert body.get("data") is None  # refused before anything ran
    (error, *_) = body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert (
        "One exportSessions per request: this one asks for 20, and none was made"
        in (error["message"])
    )
    assert exported_events(api) == []


def test_fragments_cannot_hide_a_second_export(api: Api) -> None:
    alice = api.as_("alice", "acme")
    sid, _ = start(alice, "The roadmap for next year.")
    document = f"""mutation {{ ...Exports ... on Mutation {{ pdf: exportSessions(ids: ["{sid}"], format: PDF) {{ fileName }} }} }}
    fragment Exports on Mutation {{ md: exportSessions(ids: ["{sid}"], format: MARKDOWN) {{ fileName }} }}"""
    body = alice.post(document)
    assert body.get("data") is None  # refused before anything ran
    assert "asks for 2" in body["errors"][0]["message"]
    assert exported_events(api) == []
    # The same response key twice is one field, made once.
    twice = f'mutation {{ md: exportSessions(ids: ["{sid}"], format: MARKDOWN) {{ fileName }} md: exportSessions(ids: ["{sid}"], format: MARKDOWN) {{ fileName }} }}'
    assert alice.post(twice)["data"]["md"]["fileName"].endswith(".md")
    assert len(exported_events(api)) == 1


# Point 2: one principal, many operations at once


def test_one_principal_cannot_hold_every_export_the_server_makes_at_once(
    settings_factory,
) -> None:
    # A PDF of 600,000 characters takes seconds to lay out (~100,000 a second here): the
    # socket's first two are still rendering when the third arrives.
    with app_with(settings_factory, export_workers=3) as api:
        alice, bob = api.as_("alice", "acme"), api.as_("bob", "acme")
        sid, _ = start(alice, "lorem ipsum dolor " * 5_500)
        for _ in range(5):
            say(alice, sid, "sit amet consectetur " * 4_700)
        bobs, _ = start(bob, "The roadmap for next year.")
        pdf = {"query": EXPORT, "variables": {"ids": [sid], "format": "PDF"}}
        with api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {alice.token}"}}
            )
            assert ws.receive_json() == {"type": "connection_ack"}
            for op in ("1", "2"):
                ws.send_json({"id": op, "type": "subscribe", "payload": pdf})
            time.sleep(0.5)
            ws.send_json({"id": "3", "type": "subscribe", "payload": pdf})
            third = ws.receive_json()
            assert third["id"] == "3", third
            (error,) = third["payload"]["errors"]
            assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
            assert error["message"] == (
                "You are making 2 exports already, as many as one user may make at once. "
                "Try again when one of them is done."
            )
            # Over HTTP too, it is the same principal; another one still exports.
            assert refusal(alice, [sid], "MARKDOWN") == error["message"]
            assert export(bob, [bobs], "MARKDOWN")["results"] == [
                {"id": bobs, "status": "DONE", "message": None}
            ]
        # The socket closed: its exports were stopped, and their places are free again.
        deadline = time.monotonic() + 30
        while "errors" in (body := alice.post(EXPORT, {"ids": [sid], "format": "JSON"})):
            assert "exports already" in body["errors"][0]["message"], body
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
        assert body["data"]["exportSessions"]["results"][0]["status"] == "DONE"
