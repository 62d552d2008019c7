"""Exporting sessions as documents: anyone who may read a session may export it, and
every export is on record."""

from __future__ import annotations

from dataclasses import dataclass

from ..storage.protocol import Store
from .audit import audit_event
from .bulk import ItemResult, ItemStatus, distinct_ids
from .clock import Clock
from .documents import RENDERERS, Document, ExportedSession, ExportFormat
from .errors import NotFound
from .models import Principal
from .sessions import SessionService


@dataclass(slots=True)
class Export:
    format: ExportFormat
    file_name: str
    document: Document
    results: list[ItemResult]


class ExportService:
    def __init__(self, store: Store, sessions: SessionService, clock: Clock) -> None:
        self._store = store
        self._sessions = sessions
        self._clock = clock

    async def export(self, principal: Principal, ids: list[str], fmt: ExportFormat) -> Export:
        now = self._clock.now()
        exported: list[ExportedSession] = []
        results: list[ItemResult] = []
        for session_id in distinct_ids(ids):
            try:
                session, _ = await self._sessions.load_readable(principal, session_id)
            except NotFound as exc:
                results.append(ItemResult(session_id, ItemStatus.NOT_FOUND, exc.message))
                continue
            turns = await self._store.list_turns(session.id, limit=max(session.turn_count, 1))
            exported.append(ExportedSession(session, turns))
            await self._store.append_audit(
                audit_event(principal, session, "session.exported", now, format=fmt)
            )
            results.append(ItemResult(session_id, ItemStatus.DONE))
        document = RENDERERS[fmt](exported, now)
        name = f"sessionhub-export-{now:%Y%m%d-%H%M%S}.{document.extension}"
        return Export(fmt, name, document, results)
