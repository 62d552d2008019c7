"""The audit trail (`audit`): events appended and listed, events delivered from the outbox
of the document whose change they record, and earlier events redacted."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from pymongo.errors import DuplicateKeyError

from ...domain.models import JSON, AuditEvent, AuditFilter, KeysetCursor
from . import codec
from .codec import OUTBOX, Doc, us
from .connection import Connection, DriverSession
from .filters import older_than


class AuditTrail:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def append_audit(self, event: AuditEvent) -> None:
        await self._connection.audit.insert_one(codec.audit_doc(event))

    async def list_audit(
        self,
        entity_id: str,
        audit_filter: AuditFilter,
        after: KeysetCursor | None,
        limit: int,
    ) -> list[AuditEvent]:
        if limit <= 0:
            return []
        query: Doc = {"entity_id": entity_id}
        if audit_filter.actor_id is not None:
            query["actor_id"] = audit_filter.actor_id
        if audit_filter.action is not None:
            query["action"] = audit_filter.action
        if audit_filter.session_id is not None:
            query["target"] = f"session:{audit_filter.session_id}"
        at: Doc = {}
        if audit_filter.since is not None:
            at["$gte"] = us(audit_filter.since)
        if audit_filter.until is not None:
            at["$lt"] = us(audit_filter.until)
        if at:
            query["at_us"] = at
        if after is not None:
            query.update(older_than("at_us", us(after.at), after.id))
        cursor = self._connection.audit.find(query).sort([("at_us", -1), ("_id", -1)]).limit(limit)
        return [codec.audit_from(d) for d in await cursor.to_list(None)]

    async def put(self, event: Doc, s: DriverSession) -> None:
        """Copy an outbox event into `audit`. Keyed by the event id and never overwriting,
        so copying it twice changes nothing (and no duplicate-key error aborts a
        transaction)."""
        fields = {k: v for k, v in event.items() if k != "_id"}
        with contextlib.suppress(DuplicateKeyError):  # a concurrent copy of the same event
            await self._connection.audit.update_one(
                {"_id": event["_id"]}, {"$setOnInsert": fields}, upsert=True, session=s
            )

    async def update_and_record(
        self,
        collection: Any,
        query: Doc,
        update: Doc,
        event: Doc,
        s: DriverSession,
        **options: Any,
    ) -> Doc | None:
        """Apply `update` to the document of `collection` that matches `query`, with `event`
        pushed into its outbox in the same write, then deliver the event. The document as
        `options` (of `find_one_and_update`) ask for it; None when nothing matched, and
        nothing was recorded."""
        doc: Doc | None = await collection.find_one_and_update(
            query, {**update, "$push": {OUTBOX: event}}, session=s, **options
        )
        if doc is not None:
            await self.deliver(collection, doc["_id"], [event], s)
        return doc

    async def deliver(
        self, collection: Any, doc_id: Any, events: list[Doc], s: DriverSession
    ) -> None:
        """Copy `events` from the outbox of the document `doc_id` into `audit`, then take
        them out of the outbox."""
        for event in events:
            await self.put(event, s)
        await collection.update_one(
            {"_id": doc_id},
            {"$pull": {OUTBOX: {"_id": {"$in": [e["_id"] for e in events]}}}},
            session=s,
        )

    async def redact(
        self,
        query: Doc,
        redact: Callable[[JSON], JSON],
        limit: int,
        s: DriverSession = None,
    ) -> int:
        """Replace the details of up to `limit` (0: all) events matching `query` that are
        not yet redacted with `redact(details)`; how many it redacted."""
        audit = self._connection.audit
        docs = await (
            audit.find({**query, "details.redacted": {"$ne": True}}, {"details": 1}, session=s)
            .limit(limit)
            .to_list(None)
        )
        for doc in docs:
            await audit.update_one(
                {"_id": doc["_id"]}, {"$set": {"details": redact(doc.get("details"))}}, session=s
            )
        return len(docs)
