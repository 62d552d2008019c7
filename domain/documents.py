"""Sessions rendered as documents a person can keep: Markdown, JSON, PDF and DOCX."""

from __future__ import annotations

import enum
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import orjson

from .models import Person, Session, Turn

FONTS = resources.files(__package__) / "fonts"


class ExportFormat(enum.StrEnum):
    MARKDOWN = "MARKDOWN"
    JSON = "JSON"
    PDF = "PDF"
    DOCX = "DOCX"


@dataclass(frozen=True, slots=True)
class Document:
    content: bytes
    media_type: str
    extension: str


@dataclass(slots=True)
class ExportedSession:
    session: Session
    turns: list[Turn]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _person(person: Person, session_entity_id: str) -> dict[str, Any]:
    return {
        "userId": person.user_id,
        "entityId": person.entity_id,
        "external": person.entity_id != session_entity_id,
    }


def _name(person: Person, session_entity_id: str) -> str:
    """A person as the text says them: an external grantee with their entity."""
    if person.entity_id == session_entity_id:
        return person.user_id
    return f"{person.user_id} (external, {person.entity_id})"


def session_as_dict(item: ExportedSession) -> dict[str, Any]:
    s = item.session
    return {
        "id": s.id,
        "entityId": s.entity_id,
        "chatAppId": s.chat_app_id,
        "ownerId": s.owner_id,
        "title": s.title,
        "titleSource": s.title_source.value,
        "createdAt": _iso(s.created_at),
        "lastActivityAt": _iso(s.last_activity_at),
        "archivedAt": _iso(s.archived_at),
        "status": s.status.value,
        "tags": s.tags,
        "participants": s.participants,
        "people": [_person(p, s.entity_id) for p in s.people],
        "agentContext": s.agent_context,
        "metadata": s.metadata,
        "usage": {
            "inputTokens": s.usage.input_tokens,
            "outputTokens": s.usage.output_tokens,
            "cost": s.usage.cost,
        },
        "turns": [_turn_as_dict(t) for t in item.turns],
    }


def _turn_as_dict(t: Turn) -> dict[str, Any]:
    v = t.verification
    return {
        "id": t.id,
        "seq": t.seq,
        "role": t.role.value,
        "authorId": t.author_id,
        "author": _person(t.author, t.entity_id),
        "createdAt": _iso(t.created_at),
        "content": t.content,
        "parts": t.parts,
        "toolInvocations": [
            {
                "id": i.id,
                "name": i.name,
                "input": i.input,
                "output": i.output,
                "status": i.status.value,
                "error": i.error,
                "startedAt": _iso(i.started_at),
                "durationMs": i.duration_ms,
            }
            for i in t.tool_invocations
        ],
        "trace": t.trace,
        "verification": None
        if v is None
        else {
            "grade": v.grade.value,
            "score": v.score,
            "notes": v.notes,
            "verifiedAt": _iso(v.verified_at),
            "verifiedBy": v.verified_by,
            "verifier": _person(v.verifier, t.entity_id),
        },
        "feedback": [
            {
                "userId": f.user_id,
                "givenBy": _person(f.given_by, t.entity_id),
                "kind": f.kind.value,
                "comment": f.comment,
                "at": _iso(f.at),
            }
            for f in t.feedback
        ],
        "insights": t.insights,
        "metadata": t.metadata,
        "usage": {
            "inputTokens": t.usage.input_tokens,
            "outputTokens": t.usage.output_tokens,
            "cost": t.usage.cost,
        },
    }


def render_json(items: list[ExportedSession], exported_at: datetime) -> Document:
    body = {"exportedAt": _iso(exported_at), "sessions": [session_as_dict(i) for i in items]}
    return Document(orjson.dumps(body, option=orjson.OPT_INDENT_2), "application/json", "json")


@dataclass(frozen=True, slots=True)
class _Block:
    """One piece of a rendered session, independent of the output format."""

    kind: str  # title, meta, heading, text, code
    text: str


def _blocks(item: ExportedSession) -> list[_Block]:
    s = item.session
    blocks = [
        _Block("title", s.title or "Untitled"),
        _Block(
            "meta",
            f"Session {s.id} · chat app {s.chat_app_id} · owner {s.owner_id} · "
            f"created {s.created_at:%Y-%m-%d %H:%M} UTC · {s.turn_count} turns",
        ),
    ]
    for t in item.turns:
        when = f"{t.created_at:%Y-%m-%d %H:%M:%S} UTC"
        blocks.append(
            _Block(
                "heading",
                f"{t.seq}. {t.role.value.title()} · {_name(t.author, s.entity_id)} · {when}",
            )
        )
        if t.content:
            blocks.append(_Block("text", t.content))
        for call in t.tool_invocations:
            blocks.append(_Block("text", f"Tool {call.name} ({call.status.value})"))
            if call.input is not None:
                blocks.append(_Block("code", "input: " + _json_text(call.input)))
            if call.output is not None:
                blocks.append(_Block("code", "output: " + _json_text(call.output)))
            if call.error:
                blocks.append(_Block("code", "error: " + call.error))
        if t.verification is not None:
            v = t.verification
            score = "" if v.score is None else f" ({v.score:.2f})"
            notes = f": {v.notes}" if v.notes else ""
            blocks.append(_Block("text", f"Verification: grade {v.grade.value}{score}{notes}"))
        for f in t.feedback:
            comment = f": {f.comment}" if f.comment else ""
            blocks.append(
                _Block(
                    "text",
                    f"Feedback from {_name(f.given_by, s.entity_id)}: {f.kind.value}{comment}",
                )
            )
    return blocks


def render_markdown(items: list[ExportedSession], exported_at: datetime) -> Document:
    lines: list[str] = []
    for item in items:
        for block in _blocks(item):
            match block.kind:
                case "title":
                    lines += [f"# {block.text}", ""]
                case "meta":
                    lines += [f"_{block.text}_", ""]
                case "heading":
                    lines += [f"## {block.text}", ""]
                case "code":
                    fence = "````" if "```" in block.text else "```"
                    lines += [fence, block.text, fence, ""]
                case _:
                    lines += [block.text, ""]
        lines += ["---", ""]
    lines.append(f"_Exported {exported_at:%Y-%m-%d %H:%M} UTC by sessionhub._")
    return Document("\n".join(lines).encode(), "text/markdown; charset=utf-8", "md")


def render_pdf(items: list[ExportedSession], exported_at: datetime) -> Document:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font("Sans", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("Sans", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.add_font("Mono", "", str(FONTS / "DejaVuSansMono.ttf"))
    pdf.set_title("sessionhub export")
    styles = {
        "title": ("Sans", "B", 16),
        "meta": ("Sans", "", 8),
        "heading": ("Sans", "B", 10),
        "text": ("Sans", "", 10),
        "code": ("Mono", "", 8),
    }
    for item in items:
        pdf.add_page()
        for block in _blocks(item):
            family, style, size = styles[block.kind]
            pdf.set_font(family, style, size)
            pdf.multi_cell(0, size * 0.5, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
    return Document(bytes(pdf.output()), "application/pdf", "pdf")


def render_docx(items: list[ExportedSession], exported_at: datetime) -> Document:
    from docx import Document as Docx
    from docx.shared import Pt

    document = Docx()
    document.core_properties.title = "sessionhub export"
    for index, item in enumerate(items):
        if index:
            document.add_page_break()
        for block in _blocks(item):
            match block.kind:
                case "title":
                    document.add_heading(block.text, level=1)
                case "heading":
                    document.add_heading(block.text, level=3)
                case "code":
                    run = document.add_paragraph().add_run(block.text)
                    run.font.name = "Courier New"
                    run.font.size = Pt(8)
                case "meta":
                    document.add_paragraph().add_run(block.text).italic = True
                case _:
                    document.add_paragraph(block.text)
    buffer = io.BytesIO()
    document.save(buffer)
    return Document(
        buffer.getvalue(),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    )


RENDERERS: dict[ExportFormat, Callable[[list[ExportedSession], datetime], Document]] = {
    ExportFormat.MARKDOWN: render_markdown,
    ExportFormat.JSON: render_json,
    ExportFormat.PDF: render_pdf,
    ExportFormat.DOCX: render_docx,
}
