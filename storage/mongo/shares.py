"""Shares (`shares`) and the link visits they lead to (`share_link_visits`): granted,
revoked, expired, and what they grant to whom."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from ...domain.errors import session_not_found
from ...domain.models import AuditEvent, GranteeKind, GranteeScope, KeysetCursor, Session, Share
from ...domain.timecodec import from_micros
from . import codec
from .audit import AuditTrail
from .codec import OUTBOX, Doc, time_fields, us
from .connection import Connection, DriverSession
from .filters import VISIBLE, live_at, older_than
from .sessions import SessionRecords


class ShareRecords:
    def __init__(self, connection: Connection, sessions: SessionRecords, audit: AuditTrail) -> None:
        self._connection = connection
        self._sessions = sessions
        self._audit = audit

    async def create_share(self, share: Share, audit: AuditEvent) -> Share:
        sessions, shares = self._connection.sessions, self._connection.shares

        async def work(s: DriverSession) -> Share:
            session = await sessions.find_one({"_id": share.session_id, **VISIBLE}, session=s)
            if session is None:
                raise session_not_found(share.session_id)
            doc = codec.share_doc(share, session)
            doc[OUTBOX] = [codec.audit_doc(audit)]
            await shares.insert_one(doc, session=s)
            still = await sessions.find_one(
                {"_id": share.session_id, **VISIBLE}, {"_id": 1}, session=s
            )
            if still is None:
                # Deleted meanwhile (step-by-step mode): the share must not outlive it.
                await shares.delete_one({"_id": share.id}, session=s)
                raise session_not_found(share.session_id)
            await self._audit.deliver(shares, share.id, doc[OUTBOX], s)
            return share

        return await self._connection.atomic(work)

    async def get_share(self, share_id: str) -> Share | None:
        doc = await self._connection.shares.find_one({"_id": share_id})
        return None if doc is None else codec.share_from(doc)

    async def share_by_token_hash(self, token_hash: str) -> Share | None:
        doc = await self._connection.shares.find_one({"token_hash": token_hash})
        return None if doc is None else codec.share_from(doc)

    async def list_shares(self, session_id: str) -> list[Share]:
        cursor = self._connection.shares.find({"session_id": session_id}).sort(
            [("created_at_us", 1), ("_id", 1)]
        )
        return [codec.share_from(d) for d in await cursor.to_list(None)]

    async def revoke_share(
        self, share_id: str, at: datetime, by: str, audit: AuditEvent
    ) -> Share | None:
        shares = self._connection.shares

        async def work(s: DriverSession) -> Share | None:
            doc = await self._audit.update_and_record(
                shares,
                {"_id": share_id, "revoked_at_us": None},
                {"$set": {**time_fields("revoked_at", at), "revoked_by": by}},
                codec.audit_doc(audit),
                s,
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                # Revoked before (or no such share): as it is, without a second event.
                doc = await shares.find_one({"_id": share_id}, session=s)
            return None if doc is None else codec.share_from(doc)

        return await self._connection.atomic(work)

    async def record_link_visit(
        self, share: Share, entity_id: str, user_id: str, at: datetime, audit: AuditEvent | None
    ) -> None:
        visits = self._connection.visits
        key = {"entity_id": entity_id, "user_id": user_id, "share_id": share.id}
        update: Doc = {"$set": {"session_id": share.session_id, **time_fields("opened_at", at)}}
        events = [] if audit is None else [codec.audit_doc(audit)]
        if events:
            update["$push"] = {OUTBOX: {"$each": events}}

        async def work(s: DriverSession) -> None:
            try:
                await visits.update_one(key, update, upsert=True, session=s)
            except DuplicateKeyError:
                # A concurrent first visit inserted it; now it exists and this updates it.
                await visits.update_one(key, update, session=s)
            if events:
                visit = await visits.find_one(key, {"_id": 1}, session=s)
                if visit is not None:
                    await self._audit.deliver(visits, visit["_id"], events, s)

        await self._connection.atomic(work)

    async def opened_link_ids(self, session_id: str, entity_id: str, user_id: str) -> set[str]:
        cursor = self._connection.visits.find(
            {"entity_id": entity_id, "user_id": user_id, "session_id": session_id},
            {"share_id": 1},
        )
        return {d["share_id"] for d in await cursor.to_list(None)}

    async def list_shared_with(
        self, scope: GranteeScope, now: datetime, after: KeysetCursor | None, limit: int
    ) -> list[tuple[Session, datetime]]:
        """The SQLite query, as a pipeline: the live grants that name the caller (USER and
        EXTERNAL by entity and user, ENTITY for internal users, LINK once opened), not of
        the caller's own sessions, grouped by session with the newest grant time, ordered
        by (that time, session id) descending. Sessions that are gone are skipped and the
        page is filled from further groups."""
        if limit <= 0:
            return []
        grants: list[Doc] = [
            {
                "grantee_kind": {"$in": [GranteeKind.USER.value, GranteeKind.EXTERNAL.value]},
                "grantee_entity_id": scope.entity_id,
                "grantee_user_id": scope.user_id,
            }
        ]
        if scope.internal:
            grants.append(
                {"grantee_kind": GranteeKind.ENTITY.value, "grantee_entity_id": scope.entity_id}
            )
        visits = self._connection.visits.find(
            {"entity_id": scope.entity_id, "user_id": scope.user_id}, {"share_id": 1}
        )
        opened = [d["share_id"] for d in await visits.to_list(None)]
        if opened:
            grants.append({"_id": {"$in": opened}, "grantee_kind": GranteeKind.LINK.value})
        match: Doc = {
            "$or": grants,
            "revoked_at_us": None,
            "$and": [live_at(us(now))],
            "$nor": [{"session_entity_id": scope.entity_id, "session_owner_id": scope.user_id}],
        }
        found: list[tuple[Session, datetime]] = []
        position = None if after is None else (us(after.at), after.id)
        while len(found) < limit:
            want = limit - len(found)
            pipeline: list[Doc] = [
                {"$match": match},
                {"$group": {"_id": "$session_id", "shared_at": {"$max": "$created_at_us"}}},
            ]
            if position is not None:
                pipeline.append({"$match": older_than("shared_at", *position)})
            pipeline += [{"$sort": {"shared_at": -1, "_id": -1}}, {"$limit": want}]
            groups = await self._connection.shares.aggregate(pipeline).to_list(None)
            if not groups:
                break
            sessions = {
                s.id: s for s in await self._sessions.visible_in_order([g["_id"] for g in groups])
            }
            for group in groups:
                if group["_id"] in sessions:
                    found.append((sessions[group["_id"]], from_micros(group["shared_at"])))
            if len(groups) < want:
                break
            position = (groups[-1]["shared_at"], groups[-1]["_id"])
        return found

    async def expire_due_shares(
        self, now: datetime, limit: int, audit_for: Callable[[Share], AuditEvent]
    ) -> list[Share]:
        if limit <= 0:
            return []
        shares = self._connection.shares
        cursor = (
            shares.find(
                {
                    "expiry_recorded_at_us": None,
                    "revoked_at_us": None,
                    # A share without an expiry holds null, which MongoDB's $lte never
                    # matches; mongoeco's does, so the query says it.
                    "expires_at_us": {"$ne": None, "$lte": us(now)},
                }
            )
            .sort([("expires_at_us", 1), ("_id", 1)])
            .limit(limit)
        )
        expired = []
        for doc in await cursor.to_list(None):
            share = codec.share_from(doc)
            event = codec.audit_doc(audit_for(share))

            async def claim(s: DriverSession, share_id: str = share.id, event: Doc = event) -> bool:
                claimed = await self._audit.update_and_record(
                    shares,
                    {"_id": share_id, "expiry_recorded_at_us": None, "revoked_at_us": None},
                    {"$set": time_fields("expiry_recorded_at", now)},
                    event,
                    s,
                    projection={"_id": 1},
                )
                # None: another instance recorded it, or it was revoked.
                return claimed is not None

            if await self._connection.atomic(claim):
                expired.append(share)
        return expired
