"""Organising sessions by the hundred: tags and bulk archive / delete, each id its own
result (DONE, NOT_FOUND, FORBIDDEN, REJECTED); one bad id never stops the others."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_field, auth_mutation
from ..domain.sessions import BulkOutcome
from ..schema.types import BulkResult, ItemResult, Session, TagCount
from .context import Context
from .roles import OWNERS, PEOPLE


def _bulk_result(outcome: BulkOutcome) -> BulkResult:
    return BulkResult(
        results=[
            ItemResult(id=strawberry.ID(r.id), status=r.status, message=r.message)
            for r in outcome.results
        ],
        sessions=[Session.of(view) for view in outcome.sessions],
    )


async def _tag_sessions(
    info: Info[Context, None],
    ids: list[strawberry.ID],
    add: list[str] | None = None,
    remove: list[str] | None = None,
) -> BulkResult:
    outcome = await info.context.services.sessions.tag(
        info.context.require_principal(), list(ids), add, remove
    )
    return _bulk_result(outcome)


async def _bulk_archive(info: Info[Context, None], ids: list[strawberry.ID]) -> BulkResult:
    outcome = await info.context.services.sessions.bulk_archive(
        info.context.require_principal(), list(ids)
    )
    return _bulk_result(outcome)


async def _bulk_delete(info: Info[Context, None], ids: list[strawberry.ID]) -> BulkResult:
    outcome = await info.context.services.sessions.bulk_delete(
        info.context.require_principal(), list(ids)
    )
    return _bulk_result(outcome)


async def _my_tags(
    info: Info[Context, None],
    first: Annotated[
        int | None, strawberry.argument(description="At most this many (1-1000).")
    ] = 100,
) -> list[TagCount]:
    counts = await info.context.services.sessions.tag_counts(
        info.context.require_principal(), first
    )
    return [TagCount(tag=tag, count=n) for tag, n in counts]


@strawberry.type
class OrganiseQueries:
    my_tags: list[TagCount] = auth_field(
        _my_tags,
        requires=PEOPLE,
        description="The tag names on the caller's own sessions, most used first, with counts.",
    )


@strawberry.type
class OrganiseMutations:
    tag_sessions: BulkResult = auth_mutation(
        _tag_sessions,
        requires=OWNERS,
        description="Add and remove tags (trimmed, lower case) on up to 1,000 sessions the "
        "caller manages; each id gets its own result and every change is audited.",
    )
    bulk_archive: BulkResult = auth_mutation(
        _bulk_archive,
        requires=OWNERS,
        description="Archive up to 1,000 sessions; each id gets its own result.",
    )
    bulk_delete: BulkResult = auth_mutation(
        _bulk_delete,
        requires=OWNERS,
        description="Delete up to 1,000 sessions as deleteSession does; each id gets its own "
        "result and every deletion is audited.",
    )
