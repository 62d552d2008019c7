"""The `DocumentRenderer` port: documents made by the render functions of documents.py,
in the `Offload` given (the server's is a pool of worker processes with a time budget).

PDF and DOCX need the `export` extra (fpdf2, python-docx); a server installed without it
makes Markdown and JSON only, and says so when asked for the others.
"""

from __future__ import annotations

from datetime import datetime

from ...domain.documents import Document, ExportedSession, ExportFormat
from ...domain.ports import Offload
from ..installed import installed
from .documents import render_within

NEEDS = {ExportFormat.PDF: "fpdf", ExportFormat.DOCX: "docx"}


def installed_formats() -> frozenset[ExportFormat]:
    """The formats whose libraries this installation has."""
    return frozenset(f for f in ExportFormat if f not in NEEDS or installed(NEEDS[f]))


class OffloadedRenderer:
    def __init__(self, offload: Offload, formats: frozenset[ExportFormat] | None = None) -> None:
        """`offload` makes the documents; the renderer closes it (`aclose`)."""
        self._offload = offload
        self._formats = installed_formats() if formats is None else formats

    @property
    def formats(self) -> frozenset[ExportFormat]:
        return self._formats

    async def render(
        self,
        fmt: ExportFormat,
        items: list[ExportedSession],
        exported_at: datetime,
        max_bytes: int,
    ) -> Document:
        return await self._offload.run(render_within, fmt, items, exported_at, max_bytes)

    async def aclose(self) -> None:
        await self._offload.aclose()
