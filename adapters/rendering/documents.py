"""Sessions rendered as documents a person can keep: Markdown, JSON, PDF and DOCX.

Rendering never fails on what a turn holds: characters a format cannot carry are
replaced (replacements.py) and the document says so at its top.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import orjson

from ...domain.documents import Document, ExportedSession, ExportFormat
from ...domain.errors import LimitExceeded
from ...domain.models import Person, Turn
from .replacements import Replacements, font_characters

FONTS = resources.files(__package__) / "fonts"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        # orjson refuses lone surrogates; the stdlib keeps them, for the caller's
        # Replacements to write out and count.
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _person(person: Person, session_entity_id: str) -> dict[str, Any]:
    """`entityId` null: someone of an entity the exporter is not shown (people.py)."""
    return {
        "userId": person.user_id,
        "entityId": person.entity_id,
        "external": person.entity_id != session_entity_id,
    }


def _name(person: Person, session_entity_id: str) -> str:
    """A person as the text says them: an external grantee with their entity, someone the
    exporter is not shown as such."""
    if person.entity_id == session_entity_id:
        return person.user_id
    if person.entity_id is None:
        return "someone external"
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
    """Lossless where JSON can be: only lone surrogates, which UTF-8 has no bytes for, become
    U+FFFD, listed in `replacedCharacters` (empty when nothing was replaced)."""
    sessions = [session_as_dict(i) for i in items]
    replaced = Replacements()
    try:
        content = _json_document(exported_at, replaced, sessions)
    except TypeError:
        content = _json_document(exported_at, replaced, replaced.replace_surrogates(sessions))
    return Document(content, "application/json", "json")


def _json_document(exported_at: datetime, replaced: Replacements, sessions: list) -> bytes:
    body = {
        "exportedAt": _iso(exported_at),
        "replacedCharacters": replaced.as_list(),
        "sessions": sessions,
    }
    return orjson.dumps(body, option=orjson.OPT_INDENT_2)


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


def _clean_blocks(items: list[ExportedSession], replaced: Replacements) -> list[list[_Block]]:
    """Each session's blocks with the characters that are not text escaped."""
    return [
        [_Block(b.kind, replaced.escape_not_text(b.text)) for b in _blocks(item)] for item in items
    ]


def render_markdown(items: list[ExportedSession], exported_at: datetime) -> Document:
    replaced = Replacements()
    sessions = _clean_blocks(items, replaced)
    note = replaced.note("a Markdown document")
    lines: list[str] = [f"> {note}", ""] if note else []
    for blocks in sessions:
        for block in blocks:
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


# Layout, not loss: fpdf2 draws no glyph for a tab or a carriage return.
_PDF_WHITESPACE = str.maketrans({"\t": "    ", "\r": "\n"})


def _pdf_text(text: str, glyphs: frozenset[str], replaced: Replacements) -> str:
    laid_out = text.replace("\r\n", "\n").translate(_PDF_WHITESPACE)
    return replaced.replace_missing(replaced.escape_not_text(laid_out), glyphs)


def _font(pdf: Any, key: str) -> Any:
    """A font added to `pdf`: a TrueType one, whose character map tells what it can show."""
    from fpdf.fonts import TTFFont

    font = pdf.fonts[key]
    assert isinstance(font, TTFFont), key
    return font


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
    glyphs = {
        kind: font_characters(_font(pdf, family.lower() + style).cmap)
        for kind, (family, style, _) in styles.items()
    }
    replaced = Replacements()
    sessions = [
        [_Block(b.kind, _pdf_text(b.text, glyphs[b.kind], replaced)) for b in _blocks(item)]
        for item in items
    ]
    note = replaced.note("this PDF's fonts")
    for index, blocks in enumerate(sessions):
        pdf.add_page()
        if note and index == 0:
            blocks = [_Block("meta", note), *blocks]
        for block in blocks:
            family, style, size = styles[block.kind]
            pdf.set_font(family, style, size)
            pdf.multi_cell(0, size * 0.5, block.text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
    return Document(bytes(pdf.output()), "application/pdf", "pdf")


def render_docx(items: list[ExportedSession], exported_at: datetime) -> Document:
    from docx import Document as Docx
    from docx.enum.text import WD_BREAK
    from docx.shared import Pt

    replaced = Replacements()
    sessions = _clean_blocks(items, replaced)
    document = Docx()
    document.core_properties.title = "sessionhub export"
    # Every paragraph goes in before this one: python-docx's add_paragraph looks for the
    # section properties at the end of the body, a scan of every paragraph so far, which
    # made 20,000 turns take minutes. The empty paragraph stays at the end, unseen.
    end = document.add_paragraph()
    # Looked up once: a lookup by name reads through every style of the document.
    headings = {"title": document.styles["Heading 1"], "heading": document.styles["Heading 3"]}
    note = replaced.note("a Word document")
    if note:
        end.insert_paragraph_before().add_run(note).bold = True
    for index, blocks in enumerate(sessions):
        if index:
            end.insert_paragraph_before().add_run().add_break(WD_BREAK.PAGE)
        for block in blocks:
            match block.kind:
                case "title" | "heading":
                    end.insert_paragraph_before(block.text, style=headings[block.kind])
                case "code":
                    run = end.insert_paragraph_before().add_run(block.text)
                    run.font.name = "Courier New"
                    run.font.size = Pt(8)
                case "meta":
                    end.insert_paragraph_before().add_run(block.text).italic = True
                case _:
                    end.insert_paragraph_before(block.text)
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


def render_within(
    fmt: ExportFormat, items: list[ExportedSession], exported_at: datetime, max_bytes: int
) -> Document:
    """The document, or LimitExceeded when it comes out larger than `max_bytes` (then it is
    dropped where it was made, and never crosses back to the server)."""
    document = RENDERERS[fmt](items, exported_at)
    if len(document.content) > max_bytes:
        raise LimitExceeded(
            f"The {fmt.value} document would be {len(document.content):,} bytes; the limit is "
            f"{max_bytes:,}. Export fewer sessions."
        )
    return document
