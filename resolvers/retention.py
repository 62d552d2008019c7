"""`runRetention`: an admin removes the sessions of their entity that are past retention."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_mutation
from ..domain.models import Role
from ..schema.reports import ChatAppRetention, RetentionReport
from .context import Context


async def _run_retention(
    info: Info[Context, None],
    chat_app_id: Annotated[
        strawberry.ID | None, strawberry.argument(description="Only this chat app's sessions.")
    ] = None,
    dry_run: Annotated[
        bool, strawberry.argument(description="Count what would be removed; change nothing.")
    ] = False,
) -> RetentionReport:
    report = await info.context.services.retention.run_for(
        info.context.require_principal(),
        None if chat_app_id is None else str(chat_app_id),
        dry_run,
    )
    return RetentionReport(
        dry_run=report.dry_run,
        removed=report.removed,
        turns=report.turns,
        chat_apps=[
            ChatAppRetention(
                chat_app_id=strawberry.ID(a.chat_app_id), removed=a.removed, turns=a.turns
            )
            for a in report.chat_apps
        ],
    )


@strawberry.type
class RetentionMutations:
    run_retention: RetentionReport = auth_mutation(
        _run_retention,
        requires=[Role.ADMIN],
        description="Remove for good the caller's entity's sessions past their retention "
        "(each audited as session.expired by 'system'), per chat app; admins only.",
    )
