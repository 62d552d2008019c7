"""The right to erasure: a person's own sessions deleted, and what they left in other
people's sessions and in the records of their entity emptied or taken out."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

from ...domain.models import (
    ERASED_AUTHOR,
    JSON,
    AuditEvent,
    ErasureCounts,
    Session,
    TitleSource,
    TurnRole,
)
from ...domain.removals import ContributionErasure
from . import search
from .audit import AuditTrail
from .codec import Doc, time_fields
from .connection import Connection, DriverSession
from .sessions import SessionRecords

# On a session: the people whose erasure found a title to take back there and has not yet
# taken it (see `_empty_turns_of`).
TAKE_BACK_TITLE = "take_back_title"


class Erasure:
    def __init__(self, connection: Connection, sessions: SessionRecords, audit: AuditTrail) -> None:
        self._connection = connection
        self._sessions = sessions
        self._audit = audit

    async def erase_sessions(
        self,
        session_ids: list[str],
        audit_for: Callable[[Session], AuditEvent],
        redact: Callable[[JSON], JSON],
    ) -> tuple[list[Session], int]:
        # Each session is deleted as deleteSession deletes it (atomic, or resumable without
        # transactions).
        erased, redacted = [], 0
        for session_id in session_ids:
            session = await self._sessions.get_session(session_id)
            if session is None:
                continue
            count = await self._sessions.delete(session.id, audit_for(session), {}, redact)
            if count is not None:
                erased.append(session)
                redacted += count
        return erased, redacted

    async def erase_contributions(
        self, request: ContributionErasure
    ) -> tuple[ErasureCounts, list[str]]:
        entity_id, user_id, at, batch = (
            request.entity_id,
            request.user_id,
            request.at,
            request.batch,
        )
        connection = self._connection
        counts, retitled = ErasureCounts(), []
        person = {"entity_id": entity_id, "user_id": user_id}
        # Sessions of their entity they took part in (their own are gone by now), then
        # those of other entities they took part in as an external grantee. A user of
        # another entity with the same id is someone else, and keeps everything.
        joined = await (
            connection.sessions.find(
                {"entity_id": entity_id, "participants": user_id, "owner_id": {"$ne": user_id}}
            )
            .limit(batch)
            .to_list(None)
        )
        visited = await (
            connection.sessions.find({"external_participants": {"$elemMatch": person}})
            .limit(batch)
            .to_list(None)
        )
        emptied: Doc = {
            "content": "",
            "author_id": ERASED_AUTHOR,
            "parts": None,
            "tool_invocations": [],
            "trace": None,
            "verification": None,
            "feedback": [],
            "insights": None,
            "metadata": {"erasedAt": at.isoformat()},
            "terms": [],
        }
        for doc, own in [*((d, True) for d in joined), *((d, False) for d in visited)]:
            empty_theirs = functools.partial(
                self._empty_turns_of,
                doc["_id"],
                user_id,
                person,
                own,
                # An emptied turn's author is `erased`, of the session's entity.
                {**emptied, "author_entity_id": doc["entity_id"]},
                at,
                request.opening_words,
            )
            emptied_count, took_title = await connection.atomic(empty_theirs)
            if took_title:
                retitled.append(doc["_id"])
            counts.authored_turns += emptied_count
            counts.participations += 1
        counts.titles = len(retitled)
        # Their feedback: items that name them with their entity, and in their entity's
        # sessions the items written before people carried their entity (by id alone).
        for rated_query, pull in (
            (
                {
                    "entity_id": entity_id,
                    "feedback": {
                        "$elemMatch": {"user_id": user_id, "entity_id": {"$exists": False}}
                    },
                },
                {"user_id": user_id, "entity_id": {"$exists": False}},
            ),
            ({"feedback": {"$elemMatch": person}}, person),
        ):
            rated = await connection.turns.find(rated_query, {"_id": 1}).limit(batch).to_list(None)
            if rated:
                result = await connection.turns.update_many(
                    {"_id": {"$in": [d["_id"] for d in rated]}}, {"$pull": {"feedback": pull}}
                )
                counts.feedback += result.modified_count
        mine = {"entity_id": entity_id, "user_id": user_id}
        counts.pins = (await connection.pins.delete_many(mine)).deleted_count
        granted = {"grantee_entity_id": entity_id, "grantee_user_id": user_id}
        share_ids = [
            d["_id"] for d in await connection.shares.find(granted, {"_id": 1}).to_list(None)
        ]
        if share_ids:
            await connection.visits.delete_many({"share_id": {"$in": share_ids}})
            counts.shares = (
                await connection.shares.delete_many({"_id": {"$in": share_ids}})
            ).deleted_count
        counts.link_visits = (await connection.visits.delete_many(mine)).deleted_count
        # Shares and templates are made by managers and admins, always of the row's entity.
        for collection, field in (
            (connection.shares, "created_by"),
            (connection.shares, "revoked_by"),
            (connection.templates, "created_by"),
        ):
            await collection.update_many(
                {"entity_id": entity_id, field: user_id}, {"$set": {field: ERASED_AUTHOR}}
            )
        # Their events in their entity's trail; an event that names another actor entity is
        # by someone else who has the same id.
        counts.audit_events = await self._audit.redact(
            {
                "entity_id": entity_id,
                "actor_id": user_id,
                "details.actorEntityId": {"$exists": False},
            },
            request.redact,
            batch,
        )
        return counts, retitled

    async def _empty_turns_of(
        self,
        session_id: str,
        user_id: str,
        person: Doc,
        own: bool,
        emptied: Doc,
        at: datetime,
        opening_words: Callable[[str], str],
        s: DriverSession,
    ) -> tuple[int, bool]:
        """Empty the person's turns in one session and let them leave it; how many turns
        were emptied, and whether its title was taken back. In a transaction where the
        server has them; step by step otherwise, in an order a rerun finishes: a title that
        needs taking back is first marked on the session (TAKE_BACK_TITLE) while the turns
        that say so are still there, and the mark goes in the one update that takes the
        title back and the person out of the session, so a rerun after the turns were
        emptied still finds the session (the person is still among its people) and the
        mark."""
        sessions, turns = self._connection.sessions, self._connection.turns
        # No entity stored: written before people carried theirs, the session's.
        theirs: Doc = {
            "session_id": session_id,
            "author_id": user_id,
            "author_entity_id": {"$in": [None, person["entity_id"]]}
            if own
            else person["entity_id"],
        }
        said = await turns.find_one(
            {
                **theirs,
                "role": {"$in": [TurnRole.USER.value, TurnRole.ASSISTANT.value]},
                "content": {"$regex": r"\S"},
            },
            {"_id": 1},
            session=s,
        )
        if said is not None:
            await sessions.update_one(
                {"_id": session_id, "title_source": {"$ne": TitleSource.MANUAL.value}},
                {"$addToSet": {TAKE_BACK_TITLE: person}},
                session=s,
            )
        result = await turns.update_many(theirs, {"$set": emptied}, session=s)
        leave = {"participants": user_id} if own else {"external_participants": person}
        update: Doc = {"$pull": {**leave, TAKE_BACK_TITLE: person}}
        marked = await sessions.find_one(
            {
                "_id": session_id,
                "title_source": {"$ne": TitleSource.MANUAL.value},
                TAKE_BACK_TITLE: person,
            },
            {"_id": 1},
            session=s,
        )
        if marked is not None:
            # A generated title may hold words of the turns just emptied (which turns it was
            # made from is not kept): the opening words of the first USER turn left stand
            # in, PENDING, as SQLite's erasure does. A MANUAL title is the owner's own.
            first = await (
                turns.find(
                    {
                        "session_id": session_id,
                        "role": TurnRole.USER.value,
                        "content": {"$regex": r"\S"},
                    },
                    {"content": 1},
                    session=s,
                )
                .sort("seq", 1)
                .limit(1)
                .to_list(None)
            )
            title = (opening_words(first[0]["content"]) or None) if first else None
            update["$set"] = {
                "title": title,
                "title_source": TitleSource.PENDING.value,
                "title_terms": search.term_set(title),
            }
            update["$max"] = time_fields("updated_at", at)
            update["$inc"] = {"title_version": 1}
        await sessions.update_one({"_id": session_id}, update, session=s)
        return result.modified_count, marked is not None
