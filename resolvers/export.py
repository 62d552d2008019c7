"""Exporting sessions as documents."""

from __future__ import annotations

import base64

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_mutation
from ..domain.documents import ExportFormat as DomainExportFormat
from ..domain.errors import LimitExceeded
from ..schema.enums import ExportFormat
from ..schema.types import Export, ItemResult
from .context import Context
from .roles import PEOPLE

_TEXT_FORMATS = {DomainExportFormat.MARKDOWN, DomainExportFormat.JSON}


async def _export_sessions(
    info: Info[Context, None], ids: list[strawberry.ID], format: ExportFormat
) -> Export:
    # Aliases would otherwise make one request render the same documents many times.
    info.context.exports_asked += 1
    if info.context.exports_asked > 1:
        raise LimitExceeded(
            "One exportSessions per request: this request asks for more. Give all the "
            "sessions to one exportSessions, or send one request per format."
        )
    made = await info.context.exports.export(info.context.require_principal(), list(ids), format)
    content = made.document.content
    return Export(
        format=made.format,
        file_name=made.file_name,
        media_type=made.document.media_type,
        content_base64=base64.b64encode(content).decode(),
        text=content.decode() if made.format in _TEXT_FORMATS else None,
        results=[
            ItemResult(id=strawberry.ID(r.id), status=r.status, message=r.message)
            for r in made.results
        ],
    )


@strawberry.type
class ExportMutations:
    export_sessions: Export = auth_mutation(
        _export_sessions,
        requires=PEOPLE,
        description="Up to 1,000 sessions the caller may read, as one document; each id gets "
        "its own result and every export is audited. One per request; an export past the "
        "server's budgets (turns, characters, bytes, time) answers LIMIT_EXCEEDED.",
    )
