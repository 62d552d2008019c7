"""Pins (`pins`): the sessions each user pinned, and when."""

from __future__ import annotations

import contextlib

from pymongo.errors import DuplicateKeyError

from ...domain.models import Pin, Session
from .codec import time_fields
from .connection import Connection
from .sessions import SessionRecords


class PinRecords:
    def __init__(self, connection: Connection, sessions: SessionRecords) -> None:
        self._connection = connection
        self._sessions = sessions

    async def pin(self, entity_id: str, pin: Pin) -> None:
        key = {"entity_id": entity_id, "user_id": pin.user_id, "session_id": pin.session_id}
        # A concurrent pin of the same session may win the upsert: its pinned_at stays.
        with contextlib.suppress(DuplicateKeyError):
            await self._connection.pins.update_one(
                key, {"$setOnInsert": time_fields("pinned_at", pin.pinned_at)}, upsert=True
            )

    async def unpin(self, entity_id: str, user_id: str, session_id: str) -> None:
        await self._connection.pins.delete_one(
            {"entity_id": entity_id, "user_id": user_id, "session_id": session_id}
        )

    async def pinned_session_ids(
        self, entity_id: str, user_id: str, session_ids: list[str]
    ) -> set[str]:
        if not session_ids:
            return set()
        cursor = self._connection.pins.find(
            {"entity_id": entity_id, "user_id": user_id, "session_id": {"$in": session_ids}},
            {"session_id": 1},
        )
        return {d["session_id"] for d in await cursor.to_list(None)}

    async def list_pinned(self, entity_id: str, user_id: str, limit: int) -> list[Session]:
        found: list[Session] = []
        batch = max(limit, 20)
        skip = 0
        while len(found) < limit:
            cursor = (
                self._connection.pins.find(
                    {"entity_id": entity_id, "user_id": user_id}, {"session_id": 1}
                )
                .sort([("pinned_at_us", -1), ("session_id", -1)])
                .skip(skip)
                .limit(batch)
            )
            ids = [d["session_id"] for d in await cursor.to_list(None)]
            if not ids:
                break
            found += await self._sessions.visible_in_order(ids)
            if len(ids) < batch:
                break
            skip += batch
        return found[:limit]
