"""Sessions (`sessions`): created (with their first turn), read, listed, changed, and
deleted with everything about them.

Deleting a session, step by step
--------------------------------
Without transactions (connection.py), a deletion first marks the session
`state: "deleting"` with its audit event in the session's outbox. Every read treats a
marked session as gone, and every write to a session (a tag change with its event, in the
session's outbox) is conditional on its not being marked, so nothing about it is added to
the trail after the mark but events already on their way. Then turns, pins, shares and
link visits go, the outbox's events are copied to `audit`, the earlier events about the
session are redacted (all but the deletion's own), and the session document goes last.
Deleting a marked session again, or recovery, finishes the work, the redaction included:
the store holds the redaction rule it is built with for that.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from ...domain.models import (
    JSON,
    AuditEvent,
    NewTurn,
    OwnerScope,
    Session,
    SessionCursor,
    SessionFilter,
    SessionStatus,
    TitleSource,
    Turn,
)
from . import codec, search
from .audit import AuditTrail
from .codec import CREATING, CREATING_SINCE, DELETING, OUTBOX, STATE, Doc, time_fields, us
from .connection import Connection, DriverSession
from .filters import VISIBLE, live_at, older_than
from .turns import TurnRecords


def _title_version_is(version: int) -> Doc:
    """The session's title changed `version` times (documents written before the count
    existed have none: 0)."""
    if version == 0:
        return {"title_version": {"$in": [0, None]}}
    return {"title_version": version}


class SessionRecords:
    def __init__(self, connection: Connection, turns: TurnRecords, audit: AuditTrail) -> None:
        self._connection = connection
        self._turns = turns
        self._audit = audit

    async def create_session(
        self, session: Session, first_turn: NewTurn | None, max_turns: int
    ) -> tuple[Session, Turn | None]:
        inserted = False

        async def work(s: DriverSession) -> tuple[Session, Turn | None]:
            nonlocal inserted
            doc = codec.session_doc(session)
            doc["title_terms"] = search.term_set(
                session.title, self._connection.languages.get(session.chat_app_id, ())
            )
            if first_turn is not None:
                doc[STATE] = CREATING
                doc[CREATING_SINCE] = us(datetime.now(UTC))
            await self._connection.sessions.insert_one(doc, session=s)
            inserted = True
            if first_turn is None:
                return session, None
            turn, stored = await self._turns.append_first(first_turn, max_turns, s)
            return stored, turn

        try:
            return await self._connection.atomic(work)
        except BaseException:
            if inserted and first_turn is not None and not self._connection.transactions:
                await self._discard_hidden(session.id, first_turn.id)
            raise

    async def _discard_hidden(self, session_id: str, turn_id: str) -> None:
        """Undo a session created hidden whose first turn failed. Best effort: if this
        fails as well, recovery removes the hidden session later."""
        try:
            await self._connection.turns.delete_one({"_id": turn_id, "session_id": session_id})
            await self._connection.sessions.delete_one({"_id": session_id, STATE: CREATING})
        except PyMongoError:
            pass

    async def get_session(self, session_id: str) -> Session | None:
        doc = await self._connection.sessions.find_one({"_id": session_id, **VISIBLE})
        return None if doc is None else codec.session_from(doc)

    async def _languages_of(self, session_id: str) -> tuple[str, ...]:
        """The languages the session's chat app is configured with (none: detected)."""
        if not self._connection.languages:
            return ()
        doc = await self._connection.sessions.find_one({"_id": session_id}, {"chat_app_id": 1})
        return () if doc is None else self._connection.languages.get(doc["chat_app_id"], ())

    async def rename_session(
        self,
        session_id: str,
        title: str,
        source: TitleSource,
        at: datetime,
        *,
        if_title_version: int | None = None,
    ) -> Session | None:
        only_if: Doc = {}
        if source is not TitleSource.MANUAL:
            only_if["title_source"] = {"$ne": TitleSource.MANUAL.value}
        if if_title_version is not None:
            only_if.update(_title_version_is(if_title_version))
        update = {
            "$set": {
                "title": title,
                "title_source": source.value,
                "title_terms": search.term_set(title, await self._languages_of(session_id)),
                **time_fields("updated_at", at),
            },
            "$inc": {"title_version": 1},
        }
        doc = await self._update_visible(session_id, update, only_if)
        return None if doc is None else codec.session_from(doc)

    async def set_archived(
        self, session_id: str, archived_at: datetime | None, at: datetime
    ) -> Session | None:
        update = {
            "$set": {
                **time_fields("archived_at", archived_at),
                "archived": archived_at is not None,
                **time_fields("updated_at", at),
            }
        }
        doc = await self._update_visible(session_id, update)
        return None if doc is None else codec.session_from(doc)

    async def set_tags(
        self, session_id: str, tags: list[str], at: datetime, audit: AuditEvent | None = None
    ) -> Session | None:
        # Tags live on the session document only: the listing, $text and Atlas Search paths
        # all filter on sessions.tags, so nothing else needs rewriting. The event goes into
        # the session's outbox in the same update: never about a session already marked
        # for deletion, and one marked later delivers it before redacting.
        update: Doc = {"$set": {"tags": list(dict.fromkeys(tags)), **time_fields("updated_at", at)}}

        async def work(s: DriverSession) -> Session | None:
            if audit is None:
                doc = await self._update_visible(session_id, update, s=s)
            else:
                doc = await self._audit.update_and_record(
                    self._connection.sessions,
                    {"_id": session_id, **VISIBLE},
                    update,
                    codec.audit_doc(audit),
                    s,
                    return_document=ReturnDocument.AFTER,
                )
            return None if doc is None else codec.session_from(doc)

        return await self._connection.atomic(work)

    async def set_status(
        self, session_id: str, status: SessionStatus, at: datetime
    ) -> Session | None:
        update = {"$set": {"status": status.value, **time_fields("updated_at", at)}}
        doc = await self._update_visible(session_id, update)
        return None if doc is None else codec.session_from(doc)

    async def _update_visible(
        self, session_id: str, update: Doc, only_if: Doc | None = None, s: DriverSession = None
    ) -> Doc | None:
        """Apply `update` to the session if it is visible (and matches `only_if`); the
        document as updated, None when nothing matched."""
        return await self._connection.sessions.find_one_and_update(
            {"_id": session_id, **VISIBLE, **(only_if or {})},
            update,
            return_document=ReturnDocument.AFTER,
            session=s,
        )

    async def tag_counts(
        self, scope: OwnerScope, now: datetime, limit: int
    ) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        match: Doc = {
            "entity_id": scope.entity_id,
            **VISIBLE,
            "tags.0": {"$exists": True},
            **live_at(us(now)),
        }
        if scope.owner_id is not None:
            match["owner_id"] = scope.owner_id
        pipeline: list[Doc] = [
            {"$match": match},
            {"$project": {"tags": 1}},
            {"$unwind": "$tags"},
            {"$group": {"_id": "$tags", "n": {"$sum": 1}}},
            {"$sort": {"n": -1, "_id": 1}},
            {"$limit": limit},
        ]
        groups = await self._connection.sessions.aggregate(pipeline).to_list(None)
        return [(g["_id"], g["n"]) for g in groups]

    async def list_sessions(
        self,
        scope: OwnerScope,
        session_filter: SessionFilter,
        after: SessionCursor | None,
        limit: int,
    ) -> list[Session]:
        if limit <= 0:
            return []
        query: Doc = {"entity_id": scope.entity_id, **VISIBLE}
        if scope.owner_id is not None:
            query["owner_id"] = scope.owner_id
        if session_filter.archived is not None:
            query["archived"] = session_filter.archived
        if session_filter.chat_app_ids:
            query["chat_app_id"] = {"$in": list(session_filter.chat_app_ids)}
        if session_filter.tag is not None:
            query["tags"] = session_filter.tag
        conditions: list[Doc] = []
        if session_filter.live_at is not None:
            conditions.append(live_at(us(session_filter.live_at)))
        if after is not None:
            conditions.append(
                older_than("last_activity_at_us", us(after.last_activity_at), after.session_id)
            )
        if conditions:
            query["$and"] = conditions
        cursor = (
            self._connection.sessions.find(query)
            .sort([("last_activity_at_us", -1), ("_id", -1)])
            .limit(limit)
        )
        return [codec.session_from(d) for d in await cursor.to_list(None)]

    async def visible_in_order(self, ids: list[str]) -> list[Session]:
        """The visible sessions among `ids`, in the order of `ids` (the join)."""
        cursor = self._connection.sessions.find({"_id": {"$in": ids}, **VISIBLE})
        docs = {d["_id"]: d for d in await cursor.to_list(None)}
        return [codec.session_from(docs[i]) for i in ids if i in docs]

    async def delete_session(
        self, session_id: str, audit: AuditEvent, redact: Callable[[JSON], JSON]
    ) -> bool:
        return await self.delete(session_id, audit, {}, redact) is not None

    async def delete(
        self, session_id: str, audit: AuditEvent, condition: Doc, redact: Callable[[JSON], JSON]
    ) -> int | None:
        """Delete the session (if it matches `condition`); how many earlier events about it
        were redacted, None when nothing was deleted. The earlier events keep no content of
        the session (tag names ...): they are redacted after the session is marked, when
        no write can add another (see `finish_delete`)."""
        sessions = self._connection.sessions

        async def work(s: DriverSession) -> int | None:
            marked = await sessions.find_one_and_update(
                {"_id": session_id, **VISIBLE, **condition},
                {"$set": {STATE: DELETING}, "$push": {OUTBOX: codec.audit_doc(audit)}},
                projection={"_id": 1},
                session=s,
            )
            if marked is None:
                if condition:
                    return None  # no longer expired, or someone else's deletion
                # Nothing visible to delete, unless an earlier attempt was interrupted.
                pending = await sessions.find_one(
                    {"_id": session_id, STATE: DELETING}, {"_id": 1}, session=s
                )
                if pending is None:
                    return None
            return await self.finish_delete(session_id, redact, s)

        return await self._connection.atomic(work)

    async def finish_delete(
        self, session_id: str, redact: Callable[[JSON], JSON], s: DriverSession
    ) -> int:
        """The rest of a deletion once the session is marked; safe to run again. How many
        earlier events about the session it redacted: all but the deletion's own, those
        its outbox still held included (a tag change's, written just before the mark)."""
        connection = self._connection
        for children in (connection.turns, connection.pins, connection.visits, connection.shares):
            await children.delete_many({"session_id": session_id}, session=s)
        doc = await connection.sessions.find_one(
            {"_id": session_id, STATE: DELETING}, {"entity_id": 1, OUTBOX: 1}, session=s
        )
        if doc is None:
            return 0
        outbox = doc.get(OUTBOX) or []
        for event in outbox:
            await self._audit.put(event, s)
        # The mark pushed the deletion's event last, and nothing is pushed to a marked
        # session.
        deletion_id = outbox[-1]["_id"] if outbox else None
        redacted = await self._audit.redact(
            {
                "entity_id": doc["entity_id"],
                "target": f"session:{session_id}",
                "_id": {"$ne": deletion_id},
            },
            redact,
            0,
            s,
        )
        await connection.sessions.delete_one({"_id": session_id, STATE: DELETING}, session=s)
        return redacted
