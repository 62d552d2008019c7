"""Retention: when sessions expire (`expires_at_us`), and the removal of expired ones."""

from __future__ import annotations

from ...domain.models import Session
from ...domain.removals import ExpirySweep
from . import codec
from .codec import Doc, us
from .connection import Connection
from .filters import VISIBLE
from .sessions import SessionRecords

DAY_US = 86_400_000_000


class Retention:
    def __init__(self, connection: Connection, sessions: SessionRecords) -> None:
        self._connection = connection
        self._sessions = sessions

    async def apply_retention(self, chat_app_id: str, days: int) -> int:
        # One server-side update (each document is updated atomically on its own, and
        # nothing is held across documents). `expires_at_us` is what is read back and
        # compared; its BSON-date twin is informational (no TTL index reads it any more,
        # see indexes.py) and is cleared here rather than left stale.
        result = await self._connection.sessions.update_many(
            {"chat_app_id": chat_app_id},
            [
                {
                    "$set": {
                        "expires_at_us": {"$add": ["$last_activity_at_us", days * DAY_US]},
                        "expires_at": {"$literal": None},
                    }
                }
            ],
        )
        return result.matched_count

    async def remove_expired(self, sweep: ExpirySweep) -> list[Session]:
        if sweep.batch <= 0:
            return []
        expired: Doc = {"expires_at_us": {"$ne": None, "$lte": us(sweep.now)}}
        query: Doc = {**VISIBLE, **expired}
        if sweep.chat_app_id is not None:
            query["chat_app_id"] = sweep.chat_app_id
        if sweep.entity_id is not None:
            query["entity_id"] = sweep.entity_id
        if sweep.after_id is not None:
            query["_id"] = {"$gt": sweep.after_id}
        cursor = self._connection.sessions.find(query).sort([("_id", 1)]).limit(sweep.batch)
        sessions = [codec.session_from(d) for d in await cursor.to_list(None)]
        if sweep.dry_run:
            return sessions
        # Each session is deleted on its own, as deleteSession does, and only if it is
        # still expired (an append in between moves the expiry and keeps it).
        return [
            s
            for s in sessions
            if await self._sessions.delete(s.id, sweep.audit_for(s), expired, sweep.redact)
            is not None
        ]
