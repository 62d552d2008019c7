"""Upgrades of documents written by earlier versions, run by the store at `open`.

Each upgrade runs once per database: when it is done its name goes into the `upgrades`
collection, and a start that finds the name there skips it. Every upgrade only rewrites
what is still in the old form, so one that was interrupted, or that two instances
starting at once both run, is finished by running it again.

`0015_people_settled_from_shares` is SQLite's migration 0015 for MongoDB: documents
written before people carried their entity name people by bare user id, which reads as a
person of the session's entity. Where the stored trail settles that a bare id in a
session was an external grantee (an EXTERNAL share with INTERACT to that user id of one
other entity, the grantee seen in the trail acting on the session while it was live,
every bare turn and feedback of that id within that time, and nothing that says a person
of the session's entity with that id could have written there), their turns
(`author_entity_id`), feedback items (`entity_id`) and place among the session's people
(`external_participants` instead of `participants`) name that entity. The rules, and what
stays ambiguous, are those of
storage/sqlite/migrations/0015_people_settled_from_shares.sql. Documents the current code
writes always name the entity, so that instances writing while the upgrade runs (at
start) add nothing it could take for old ones.
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
# Reads by someone who may write in a session they do not own: an admin (MANAGE), a
# service or a collaborator through a share (INTERACT).
WRITERS_ACCESS = ("MANAGE", "INTERACT")
# Actions on a session that its owner, an admin or a service takes: someone else's session
# shows one of the latter.
MANAGING_ACTIONS = (
    "session.tagged",
    "session.archived",
    "session.completed",
    "session.reopened",
    "share.created",
    "share.revoked",
)
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
    """Users of an entity whose events in its audit trail show a reach beyond their own
    sessions (an admin's or a service's): remembered per person."""

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
                            {
                                "action": "session.read",
                                "details.access": {"$in": list(WRITERS_ACCESS)},
                            },
                            {"action": "session.deleted", "details.ownerId": {"$ne": user_id}},
                        ]
                    },
                ]
            },
            {"_id": 1},
        )
        if admin is not None:
            return True
        managed = await audit.distinct(
            "target", {**theirs, "action": {"$in": list(MANAGING_ACTIONS)}}
        )
        for target in managed:
            if await self._owner(entity_id, target) != user_id:
                return True
        return False

    async def _owner(self, entity_id: str, target: str) -> str | None:
        """The owner of the session `target` names: the session's, or, once it is gone,
        the one its deletion event names (None when the trail no longer knows)."""
        session = await self._db[indexes.SESSIONS].find_one(
            {"_id": target.removeprefix("session:")}, {"owner_id": 1}
        )
        if session is not None:
            return session["owner_id"]
        deleted = await self._db[indexes.AUDIT].find_one(
            {"entity_id": entity_id, "target": target, "action": "session.deleted"},
            {"details.ownerId": 1},
        )
        return None if deleted is None else (deleted.get("details") or {}).get("ownerId")


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
    target = f"session:{session_id}"
    seen = await (
        db[indexes.AUDIT]
        .find(
            {
                "entity_id": own_entity,
                "target": target,
                "actor_id": user_id,
                "details.actorEntityId": entity_id,
            },
            {"at_us": 1},
        )
        .to_list(None)
    )
    if not any(w.covers(e.get("at_us")) for e in seen for w in windows):
        return False
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
        {**_by_entitys_own(own_entity, user_id), "target": target}, {"_id": 1}
    )
    if acted is not None or await privileged(own_entity, user_id):
        return False
    theirs = {"session_id": session_id}
    turns = db[indexes.TURNS]
    # Written by u of the session's entity (with the entity, since people carry theirs; a
    # verification, by the owner, an admin or a service, also before).
    own_person = {"user_id": user_id, "entity_id": own_entity}
    of_own = await turns.find_one(
        {
            **theirs,
            "$or": [
                {"author_id": user_id, "author_entity_id": own_entity},
                {"feedback": {"$elemMatch": own_person}},
                {
                    "verification.verified_by": user_id,
                    "verification.verified_by_entity_id": {"$in": [None, own_entity]},
                },
            ],
        },
        {"_id": 1},
    )
    if of_own is not None:
        return False
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
