"""`eraseUserData`: an admin erases everything personal of a user of their entity."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from ..auth.permissions import auth_mutation
from ..domain.models import Role
from ..schema.reports import ErasureReport
from .context import Context


async def _erase_user_data(
    info: Info[Context, None],
    user_id: Annotated[
        strawberry.ID, strawberry.argument(description="The user of the caller's entity.")
    ],
) -> ErasureReport:
    report = await info.context.services.erasure.erase(
        info.context.require_principal(), str(user_id)
    )
    return ErasureReport(
        user_id=strawberry.ID(report.user_id),
        erased_at=report.erased_at,
        audit_event_id=strawberry.ID(report.audit_event_id),
        **report.counts.as_dict(),
    )


@strawberry.type
class ErasureMutations:
    erase_user_data: ErasureReport = auth_mutation(
        _erase_user_data,
        requires=[Role.ADMIN],
        description="Right to erasure: remove everything personal of a user of the caller's "
        "entity (their sessions, their turns and feedback elsewhere, pins, shares, search "
        "entries), for good. Safe to run again; admins only.",
    )
