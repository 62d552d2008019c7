"""Exported documents hold the conversation, readable back by the tools people use."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import orjson
import pytest
from docx import Document as Docx
from pypdf import PdfReader

from sessionhub.adapters.rendering.documents import RENDERERS, render_within
from sessionhub.domain.documents import ExportedSession, ExportFormat
from sessionhub.domain.errors import LimitExceeded
from sessionhub.domain.models import (
    Feedback,
    FeedbackKind,
    Grade,
    Session,
    TitleSource,
    ToolInvocation,
    Turn,
    TurnRole,
    Verification,
)

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def sample() -> list[ExportedSession]:
    session = Session(
        "s1",
        "acme",
        "knowledge",
        "alice",
        "Straße & Ünïcode ```fences```",
        TitleSource.MANUAL,
        NOW,
        NOW,
        NOW,
        turn_count=2,
    )
    turns = [
        Turn(
            "t1",
            "s1",
            1,
            TurnRole.USER,
            "alice",
            "Wie spät ist es in Zürich?",
            NOW,
            entity_id="acme",
            author_entity_id="acme",
        ),
        Turn(
            "t2",
            "s1",
            2,
            TurnRole.ASSISTANT,
            "agent",
            "Es ist 10:30.",
            NOW,
            tool_invocations=[
                ToolInvocation("c1", "clock", {"tz": "Europe/Zurich"}, {"t": "10:30"})
            ],
            verification=Verification(
                Grade.A, 0.95, "checked", NOW, "grader", verified_by_entity_id="acme"
            ),
            feedback=[Feedback("bob", FeedbackKind.THUMBS_UP, "danke", NOW, entity_id="acme")],
            entity_id="acme",
            author_entity_id="acme",
        ),
    ]
    return [ExportedSession(session, turns)]


def test_markdown_holds_every_turn_and_annotation() -> None:
    text = RENDERERS[ExportFormat.MARKDOWN](sample(), NOW).content.decode()
    for expected in (
        "# Straße & Ünïcode",
        "## 1. User · alice",
        "Wie spät ist es in Zürich?",
        "Tool clock (SUCCEEDED)",
        '"tz": "Europe/Zurich"',
        "Verification: grade A (0.95): checked",
        "Feedback from bob: THUMBS_UP: danke",
    ):
        assert expected in text


def test_json_keeps_the_structure() -> None:
    body = orjson.loads(RENDERERS[ExportFormat.JSON](sample(), NOW).content)
    (session,) = body["sessions"]
    assert session["title"].startswith("Straße")
    assert [t["seq"] for t in session["turns"]] == [1, 2]
    assert session["turns"][1]["toolInvocations"][0]["output"] == {"t": "10:30"}
    assert session["turns"][1]["verification"]["grade"] == "A"


def test_docx_paragraphs_hold_the_text() -> None:
    document = Docx(io.BytesIO(RENDERERS[ExportFormat.DOCX](sample(), NOW).content))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "Wie spät ist es in Zürich?" in text and "Es ist 10:30." in text


def test_pdf_is_a_pdf_with_embedded_unicode_font() -> None:
    content = RENDERERS[ExportFormat.PDF](sample(), NOW).content
    assert content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF")
    assert b"DejaVuSans" in content


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_an_empty_export_still_renders(fmt: ExportFormat) -> None:
    document = RENDERERS[fmt]([], NOW)
    assert document.content
    if fmt is ExportFormat.DOCX:
        assert zipfile.is_zipfile(io.BytesIO(document.content))


# Characters a format cannot carry (issue 20, point 8): each is replaced where the format
# needs it, the document says so, and everything else is whole. Lone surrogates cannot
# come in through the API (its JSON parser and the stores refuse them), so they are
# tried here only.

PLANTED = {
    "\x00": r"\x00",
    "\x01": r"\x01",
    "\x0b": r"\x0b",
    "\x1b": r"\x1b",
    "\x7f": r"\x7f",
    "\x85": r"\x85",
    "\ufffe": r"\ufffe",
    "\uffff": r"\uffff",
    "\ud800": r"\ud800",
}


def planted() -> ExportedSession:
    session = Session(
        "s2", "acme", "knowledge", "mallory", "Plant", TitleSource.MANUAL, NOW, NOW, NOW
    )
    content = "Before " + " ".join(f"[{c}]" for c in PLANTED) + " after"
    call = ToolInvocation("c2", "probe", {"key\ud800": "value\x1b"}, "out\ufffe")
    turn = Turn(
        "t9",
        "s2",
        1,
        TurnRole.USER,
        "mallory",
        content,
        NOW,
        tool_invocations=[call],
        entity_id="acme",
        author_entity_id="acme",
    )
    return ExportedSession(session, [turn])


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def document_text(fmt: ExportFormat, content: bytes) -> str:
    """What a person reads in the document."""
    if fmt is ExportFormat.DOCX:
        return "\n".join(p.text for p in Docx(io.BytesIO(content)).paragraphs)
    if fmt is ExportFormat.PDF:
        return pdf_text(content)
    return content.decode("utf-8")


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("fmt", [ExportFormat.MARKDOWN, ExportFormat.PDF, ExportFormat.DOCX])
def test_a_document_for_people_escapes_what_is_not_text_and_says_so(fmt: ExportFormat) -> None:
    text = document_text(fmt, RENDERERS[fmt]([*sample(), planted()], NOW).content)
    assert "Note: 11 characters that" in text
    # The tool call's key and output hold one more U+D800 and U+FFFE (its U+001B is
    # written as JSON writes it, \u001b).
    twice = {"\ud800", "\ufffe"}
    for character, written in PLANTED.items():
        assert f"[{written}]" in text
        count = 2 if character in twice else 1
        assert f"U+{ord(character):04X} ×{count} by {written}" in words(text)
    assert '"key\\ud800": "value\\u001b"' in text and "out\\ufffe" in text
    assert "Before [" in text and "] after" in text
    # The ordinary session is whole.
    for expected in ("Wie spät ist es in Zürich?", "Es ist 10:30.", "Feedback from bob"):
        assert expected in text


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_a_document_without_such_characters_has_no_note(fmt: ExportFormat) -> None:
    content = RENDERERS[fmt](sample(), NOW).content
    if fmt is ExportFormat.JSON:
        assert orjson.loads(content)["replacedCharacters"] == []
    else:
        assert "Note:" not in document_text(fmt, content)


def test_json_stays_valid_and_loses_only_lone_surrogates() -> None:
    body = orjson.loads(RENDERERS[ExportFormat.JSON]([*sample(), planted()], NOW).content)
    ordinary, plant = body["sessions"]
    assert ordinary["turns"][0]["content"] == "Wie spät ist es in Zürich?"
    kept = "".join(c for c in PLANTED if c != "\ud800")
    assert plant["turns"][0]["content"] == (
        "Before " + " ".join(f"[{c}]" for c in kept) + " [\ufffd] after"
    )
    assert plant["turns"][0]["toolInvocations"][0]["input"] == {"key\ufffd": "value\x1b"}
    assert body["replacedCharacters"] == [
        {"codePoint": "U+D800", "count": 2, "writtenAs": "\ufffd"}
    ]


def test_a_pdf_shows_characters_its_fonts_lack_as_replacement_characters() -> None:
    item = sample()[0]
    item.turns[0] = Turn(
        "t1",
        "s1",
        1,
        TurnRole.USER,
        "alice",
        "中文\tok\r\nnext",
        NOW,
        entity_id="acme",
        author_entity_id="acme",
    )
    text = pdf_text(RENDERERS[ExportFormat.PDF]([item], NOW).content)
    assert "U+4E2D ×1 by \ufffd; U+6587 ×1 by \ufffd" in words(text)
    assert "\ufffd\ufffd    ok\nnext" in text  # tabs and line ends are layout, not loss


def test_a_document_larger_than_allowed_is_refused_with_its_size() -> None:
    size = len(RENDERERS[ExportFormat.MARKDOWN](sample(), NOW).content)
    assert render_within(ExportFormat.MARKDOWN, sample(), NOW, size).content
    with pytest.raises(LimitExceeded, match=f"would be {size:,} bytes; the limit is {size - 1:,}"):
        render_within(ExportFormat.MARKDOWN, sample(), NOW, size - 1)
