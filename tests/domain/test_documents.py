"""Exported documents hold the conversation, readable back by the tools people use."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import orjson
import pytest
from docx import Document as Docx

from sessionhub.domain.documents import RENDERERS, ExportedSession, ExportFormat
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
