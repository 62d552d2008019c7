"""Recovery: finishing what interrupted step-by-step writes left (connection.py says how
they are ordered so that this can). Run at `open` and before every expiry sweep;
idempotent, and a no-op after transactional writes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ...domain.models import JSON
from .audit import AuditTrail
from .codec import CREATING, CREATING_SINCE, DELETING, OUTBOX, STATE, us
from .connection import Connection
from .filters import VISIBLE
from .sessions import SessionRecords

# A hidden session whose creation has not finished after this long was abandoned.
CREATION_GRACE = timedelta(hours=1)
# How many documents of each kind one run finishes; the next run takes the rest.
RECOVERY_BATCH = 100


class Recovery:
    """`redact` is the rule that cuts the audit details of a deleted session down: the one
    the domain passes to every deletion, which an interrupted deletion finished here has
    no domain call to pass."""

    def __init__(
        self,
        connection: Connection,
        sessions: SessionRecords,
        audit: AuditTrail,
        redact: Callable[[JSON], JSON],
    ) -> None:
        self._connection = connection
        self._sessions = sessions
        self._audit = audit
        self._redact = redact

    async def recover(self, now: datetime) -> None:
        """Finish deletions, deliver audit events left in outboxes, and remove sessions
        whose creation never finished."""
        connection = self._connection
        cursor = connection.sessions.find({STATE: DELETING}, {"_id": 1}).limit(RECOVERY_BATCH)
        for doc in await cursor.to_list(None):
            finish = functools.partial(self._sessions.finish_delete, doc["_id"], self._redact)
            await connection.atomic(finish)
        # Events that did not reach `audit` from the outbox of a visible session (a tag
        # change; marked sessions' are delivered above), a share, a link visit, a template.
        waiting = {"outbox._id": {"$exists": True}}
        for collection, query in (
            (connection.sessions, {**waiting, **VISIBLE}),
            (connection.shares, waiting),
            (connection.visits, waiting),
            (connection.templates, waiting),
        ):
            cursor = collection.find(query, {OUTBOX: 1}).limit(RECOVERY_BATCH)
            for doc in await cursor.to_list(None):
                await self._audit.deliver(collection, doc["_id"], doc.get(OUTBOX) or [], None)
        # A template deletion interrupted after its event reached `audit`.
        await connection.templates.delete_many({STATE: DELETING, OUTBOX: {"$size": 0}})
        # Sessions written hidden before CREATING_SINCE existed are judged by created_at.
        since = us(datetime.now(UTC) - CREATION_GRACE)
        abandoned = {
            STATE: CREATING,
            "$or": [
                {CREATING_SINCE: {"$lt": since}},
                {
                    CREATING_SINCE: {"$exists": False},
                    "created_at_us": {"$lt": us(now - CREATION_GRACE)},
                },
            ],
        }
        cursor = connection.sessions.find(abandoned, {"_id": 1}).limit(RECOVERY_BATCH)
        for doc in await cursor.to_list(None):
            await connection.turns.delete_many({"session_id": doc["_id"]})
            await connection.sessions.delete_one({"_id": doc["_id"], STATE: CREATING})
