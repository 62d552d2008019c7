"""Exporting sessions as documents."""

from __future__ import annotations

import base64

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_mutation
from ..domain.documents import ExportFormat as DomainExportFormat
from ..schema.enums import ExportFormat
from ..schema.types import Export, ItemResult
from .context import Context
from .roles import PEOPLE

_TEXT_FORMATS = {DomainExportFormat.MARKDOWN, DomainExportFormat.JSON}
# Aliases would make one request render documents many times over: the server's query
# limits refuse a whole operation that asks for this field twice, before anything runs
# (refusing only the second would not do: Export! is non-null, so its error would void
# the data of the first, a document already made and audited).
ONCE_PER_REQUEST = frozenset({"exportSessions"})


async def _export_sessions(
    info: Info[Context, None], ids: list[strawberry.ID], format: ExportFormat
) -> Export:
    made = await info.context.services.exports.export(
        info.context.require_principal(), list(ids), format
    )
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
