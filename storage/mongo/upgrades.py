"""Upgrades of documents written by earlier versions, run by the store at `open`.

Each upgrade runs once per database: when it is done its name goes into the `upgrades`
collection, and a start that finds the name there skips it. Every upgrade only rewrites
what is still in the old form, so one that was interrupted, or that two instances
starting at once both run, is finished by running it again.

`0015_people_settled_from_shares` is SQLite's migration 0015 for MongoDB: documents
written before people carried their entity name people by bare user id, which reads as a
person of the session's entity. Where the stored trail settles that a bare id in a
session was an external grantee (an EXTERNAL share with INTERACT to that user id of one
other entity, live when they wrote, and no way in for a person of the session's entity
with that id), their turns (`author_entity_id`), feedback items (`entity_id`) and place
among the session's people (`external_participants` instead of `participants`) name
that entity. The rules, and what stays ambiguous, are those of
storage/sqlite/migrations/0015_people_settled_from_shares.sql.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from . import indexes

UPGRADES = "upgrades"
PEOPLE_SETTLED = "0015_people_settled_from_shares"
FOREVER = 2**63 - 1
# Actions that only an admin (or a service) of the entity takes, whoever owns the session.
ADMIN_ACTIONS = ("user.erased", "template.created", "template.updated", "template.deleted")
# A feedback item written before people carried their entity.
_BARE = {"entity_id": {"$exists": False}}

Db = Any
Counts = dict[str, int]


async def run_pending(db: Db) -> None:
    """Run the upgrades this database has not recorded as done."""
    for name, upgrade in UPGRADE_STEPS:
        if await db[UPGRADES].find_one({"_id": name}, {"_id": 1}) is not None:
            continue
        counts = await upgrade(db)
        # Another instance may have finished it at the same time.
        with contextlib.suppress(DuplicateKeyError):
            await db[UPGRADES].insert_one({"_id": name, "done_at": datetime.now(UTC), **counts})


@dataclass(frozen=True, slots=True)
class _Grant:
    entity_id: str
    live_from: int
    live_until: int

    def covers(self, at: int | None) -> bool:
        return at is not None and self.live_from <= at <= self.live_until


async def settle_people_from_shares(db: Db) -> Counts:
    counts = {"sessions": 0, "turns": 0, "feedback": 0}
    grants: dict[str, dict[str, list[_Grant]]] = defaultdict(lambda: defaultdict(list))
    cursor = db[indexes.SHARES].find(
        {
            "grantee_kind": "EXTERNAL",
            "mode": "INTERACT",
            "grantee_user_id": {"$type": "string"},
            "grantee_entity_id": {"$type": "string"},
        }
    )
    for share in await cursor.to_list(None):
        until = min(share.get("revoked_at_us") or FOREVER, share.get("expires_at_us") or FOREVER)
        grants[share["session_id"]][share["grantee_user_id"]].append(
            _Grant(share["grantee_entity_id"], share["created_at_us"], until)
        )
    privileged = _Privileged(db)
    for session_id, by_user in grants.items():
        session = await db[indexes.SESSIONS].find_one(
            {"_id": session_id, "state": {"$exists": False}}
        )
        if session is None:
            continue
        settled = []
        for user_id, user_grants in by_user.items():
            entities = {g.entity_id for g in user_grants} - {session["entity_id"]}
            if len(entities) != 1 or user_id == session["owner_id"]:
                continue
            (entity_id,) = entities
            windows = [g for g in user_grants if g.entity_id == entity_id]
            if await _settled(db, session, user_id, entity_id, windows, privileged):
                settled.append((await _first_seq(db, session_id, user_id), user_id, entity_id))
        if not settled:
            continue
        counts["sessions"] += 1
        for first_seq, user_id, entity_id in sorted(settled, key=lambda s: (s[0] is None, s)):
            counts["turns"] += await _rewrite_turns(db, session_id, user_id, entity_id)
            counts["feedback"] += await _rewrite_feedback(db, session_id, user_id, entity_id)
            if first_seq is not None:
                person = {"entity_id": entity_id, "user_id": user_id}
                await db[indexes.SESSIONS].update_one(
                    {"_id": session_id},
                    {
                        "$pull": {"participants": user_id},
                        "$addToSet": {"external_participants": person},
                    },
                )
    return counts


class _Privileged:
    """Users of an entity whose events in its audit trail show a role that writes in every
    session of it (an admin): remembered per person."""

    def __init__(self, db: Db) -> None:
        self._db = db
        self._known: dict[tuple[str, str], bool] = {}

    async def __call__(self, entity_id: str, user_id: str) -> bool:
        key = (entity_id, user_id)
        if key not in self._known:
            self._known[key] = await self._look(entity_id, user_id)
        return self._known[key]

    async def _look(self, entity_id: str, user_id: str) -> bool:
        theirs = _by_entitys_own(entity_id, user_id)
        audit = self._db[indexes.AUDIT]
        admin = await audit.find_one(
            {
                "$and": [
                    theirs,
                    {
                        "$or": [
                            {"action": {"$in": list(ADMIN_ACTIONS)}},
                            {"details.access": "MANAGE"},
                            {"action": "session.deleted", "details.ownerId": {"$ne": user_id}},
                        ]
                    },
                ]
            },
            {"_id": 1},
        )
        return admin is not None


def _by_entitys_own(entity_id: str, user_id: str) -> dict[str, Any]:
    """Events of `entity_id` whose actor is its person `user_id` (not an external grantee
    with the same id, whose events name their entity)."""
    return {
        "entity_id": entity_id,
        "actor_id": user_id,
        "$or": [
            {"details.actorEntityId": {"$exists": False}},
            {"details.actorEntityId": entity_id},
        ],
    }


async def _settled(
    db: Db,
    session: dict[str, Any],
    user_id: str,
    entity_id: str,
    windows: list[_Grant],
    privileged: Callable[[str, str], Awaitable[bool]],
) -> bool:
    session_id, own_entity = session["_id"], session["entity_id"]
    shares = await db[indexes.SHARES].find({"session_id": session_id}).to_list(None)
    for share in shares:
        kind, interact = share["grantee_kind"], share["mode"] == "INTERACT"
        if kind == "USER" and share.get("grantee_user_id") == user_id:
            return False
        if kind == "ENTITY" and interact:
            return False
        if kind == "LINK" and interact:
            opened = await db[indexes.LINK_VISITS].find_one(
                {"share_id": share["_id"], "user_id": user_id, "entity_id": {"$ne": entity_id}}
            )
            if opened is not None:
                return False
    acted = await db[indexes.AUDIT].find_one(
        {**_by_entitys_own(own_entity, user_id), "target": f"session:{session_id}"}, {"_id": 1}
    )
    if acted is not None or await privileged(own_entity, user_id):
        return False
    theirs = {"session_id": session_id}
    turns = db[indexes.TURNS]
    written = await turns.find(
        {**theirs, "author_id": user_id, "author_entity_id": {"$exists": False}},
        {"created_at_us": 1},
    ).to_list(None)
    for turn in written:
        if not any(w.covers(turn.get("created_at_us")) for w in windows):
            return False
    rated = await turns.find(
        {
            **theirs,
            "feedback": {"$elemMatch": {"user_id": user_id, **_BARE}},
        },
        {"feedback": 1},
    ).to_list(None)
    for turn in rated:
        for item in turn["feedback"]:
            theirs_bare = item.get("user_id") == user_id and "entity_id" not in item
            if theirs_bare and not any(w.covers(item.get("at_us")) for w in windows):
                return False
    return True


async def _first_seq(db: Db, session_id: str, user_id: str) -> int | None:
    first = await (
        db[indexes.TURNS]
        .find({"session_id": session_id, "author_id": user_id}, {"seq": 1})
        .sort("seq", 1)
        .limit(1)
        .to_list(None)
    )
    return first[0]["seq"] if first else None


async def _rewrite_turns(db: Db, session_id: str, user_id: str, entity_id: str) -> int:
    result = await db[indexes.TURNS].update_many(
        {"session_id": session_id, "author_id": user_id, "author_entity_id": {"$exists": False}},
        {"$set": {"author_entity_id": entity_id}},
    )
    return result.modified_count


async def _rewrite_feedback(db: Db, session_id: str, user_id: str, entity_id: str) -> int:
    turns = db[indexes.TURNS]
    old = {"user_id": user_id, **_BARE}
    rewritten = 0
    rated = await turns.find(
        {"session_id": session_id, "feedback": {"$elemMatch": old}}, {"feedback": 1}
    ).to_list(None)
    for turn in rated:
        items = [
            {**item, "entity_id": entity_id}
            if item.get("user_id") == user_id and "entity_id" not in item
            else item
            for item in turn["feedback"]
        ]
        # Only over the array as read: a feedback given meanwhile is not lost.
        result = await turns.update_one(
            {"_id": turn["_id"], "feedback": turn["feedback"]}, {"$set": {"feedback": items}}
        )
        rewritten += result.modified_count
    return rewritten


UPGRADE_STEPS: tuple[tuple[str, Callable[[Db], Awaitable[Counts]]], ...] = (
    (PEOPLE_SETTLED, settle_people_from_shares),
)
