"""What an export is made of: the formats, the sessions going in, the document coming out.
The documents themselves are made behind the `DocumentRenderer` port (adapters/rendering).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .models import Session, Turn


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
