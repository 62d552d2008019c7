"""Exporting sessions as documents."""

from __future__ import annotations

import base64

import strawberry
from graphql import FieldNode, FragmentDefinitionNode, InlineFragmentNode, SelectionSetNode
from strawberry.types import Info

from ..auth.permissions import auth_mutation
from ..domain.documents import ExportFormat as DomainExportFormat
from ..domain.errors import LimitExceeded
from ..schema.enums import ExportFormat
from ..schema.types import Export, ItemResult
from .context import Context
from .roles import PEOPLE

_TEXT_FORMATS = {DomainExportFormat.MARKDOWN, DomainExportFormat.JSON}
_FIELD = "exportSessions"


def _export_keys(
    selections: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]
) -> set[str]:
    """The response keys of the exportSessions fields of a selection, through fragments;
    @skip and @include are not weighed, so a skipped one counts too."""
    keys: set[str] = set()
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value == _FIELD:
                keys.add((selection.alias or selection.name).value)
        elif isinstance(selection, InlineFragmentNode):
            keys |= _export_keys(selection.selection_set, fragments, seen)
        elif selection.name.value not in seen and selection.name.value in fragments:
            seen.add(selection.name.value)
            keys |= _export_keys(fragments[selection.name.value].selection_set, fragments, seen)
    return keys


async def _export_sessions(
    info: Info[Context, None], ids: list[strawberry.ID], format: ExportFormat
) -> Export:
    # Aliases would make one request render documents many times over. The whole request
    # is refused, before anything is rendered: Export! is non-null, so an error in one
    # field voids the data of all the others, a document already made included.
    fragments = info._raw_info.fragments  # graphql-core's resolve info, beneath Strawberry's
    asked = len(_export_keys(info.operation.selection_set, fragments, set()))
    if asked > 1:
        raise LimitExceeded(
            f"One {_FIELD} per request: this one asks for {asked}, and none was made. Give all "
            f"the sessions to one {_FIELD}, or send one request per format."
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
