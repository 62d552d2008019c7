"""Turns (`turns`): appended with gapless sequence numbers and counted on their session,
read, and annotated with verifications and feedback.

Turn sequence numbers
---------------------
`seq` must count 1, 2, 3 … with no gaps, under concurrent appends from several
instances. A counter incremented first (`find_one_and_update` with `$inc`) and the turn
inserted second leaves a gap when the process dies between the two. So the turn goes
first: the appender reads `turn_count` = n and inserts the turn as `(session_id, n + 1)`;
the unique index on `(session_id, seq)` lets exactly one concurrent appender have it.
Then one conditional update, filtered on `turn_count: n`, counts the turn (`$inc`
turn_count and usage, `$max` last activity, `$addToSet` participants), so it is applied
once and only once. An appender whose insert hits a taken seq helps the holder: it
applies that turn's counters with the same conditional update, then reads again and
tries n + 2. A turn stored by a process that died before counting it is thus counted by
the next append, never skipped over. In a transaction the same steps simply commit
together. The unique index is the arbiter either way, never an in-process lock.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from ...domain.errors import Conflict, LimitExceeded, StoreUnavailable, session_not_found
from ...domain.models import Feedback, NewTurn, Session, Turn, TurnRole, TurnText, Verification
from . import codec, search
from .codec import CREATING, CREATING_SINCE, DELETING, STATE, Doc, time_fields
from .connection import Connection, DriverSession
from .filters import VISIBLE

# Appends that lose the race for a seq retry; this bounds pathological contention.
MAX_SEQ_ATTEMPTS = 1000


class _SeqTaken(Exception):
    """Another appender already stored the turn with this seq (or the turn id exists)."""

    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.seq = seq


def _counters(turn: Turn, *, reveal: bool, retention_days: int | None = None) -> Doc:
    """The session update that counts `turn` (applied under a `turn_count: seq - 1` filter).
    With `retention_days`, the expiry moves to the new last activity plus those days (as a
    `$max`: the last activity only grows, and apply_retention rewrites it when the days
    change)."""
    update: Doc = {
        "$inc": {
            "turn_count": 1,
            "usage.input_tokens": turn.usage.input_tokens,
            "usage.output_tokens": turn.usage.output_tokens,
            "usage.cost": turn.usage.cost,
        },
        "$max": {
            **time_fields("last_activity_at", turn.created_at),
            **time_fields("updated_at", turn.created_at),
        },
        # Users of the session's entity by id; people of other entities with theirs.
        "$addToSet": {"external_participants": codec.person_doc(turn.author)}
        if turn.external_author
        else {"participants": turn.author_id},
    }
    if retention_days is not None:
        expires = turn.created_at + timedelta(days=retention_days)
        update["$max"].update(time_fields("expires_at", expires))
    if reveal:
        update["$unset"] = {STATE: "", CREATING_SINCE: ""}
    return update


class TurnRecords:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def append_turn(
        self, turn: NewTurn, max_turns: int, retention_days: int | None = None
    ) -> tuple[Turn, Session]:
        append = functools.partial(
            self._append_once, turn, max_turns, reveal=False, retention_days=retention_days
        )
        for _ in range(MAX_SEQ_ATTEMPTS):
            try:
                return await self._connection.atomic(append)
            except _SeqTaken as taken:
                if await self._connection.turns.find_one({"_id": turn.id}, {"_id": 1}) is not None:
                    raise Conflict(f"Turn {turn.id!r} already exists.") from None
                await self._count_stored_turn(turn.session_id, taken.seq)
        raise StoreUnavailable("Too many concurrent appends to this session; try again.")

    async def append_first(
        self, first: NewTurn, max_turns: int, s: DriverSession
    ) -> tuple[Turn, Session]:
        """Append the first turn of a session created hidden, and show the session."""
        try:
            return await self._append_once(first, max_turns, s, reveal=True)
        except _SeqTaken as exc:
            raise Conflict(f"Turn {first.id!r} already exists.") from exc

    async def _append_once(
        self,
        new: NewTurn,
        max_turns: int,
        s: DriverSession,
        *,
        reveal: bool,
        retention_days: int | None = None,
    ) -> tuple[Turn, Session]:
        """One attempt: read the count, store the turn as the next seq, count it.
        `reveal` appends the first turn of a session created hidden, and shows it."""
        sessions, turns = self._connection.sessions, self._connection.turns
        state: Doc = {STATE: CREATING} if reveal else VISIBLE
        session = await sessions.find_one({"_id": new.session_id, **state}, session=s)
        if session is None:
            raise session_not_found(new.session_id)
        count = session["turn_count"]
        if count >= max_turns:
            raise LimitExceeded(
                f"The session already holds {max_turns} turns, the most its chat app allows."
            )
        turn = Turn.numbered(new, count + 1, session["entity_id"])
        try:
            doc = codec.turn_doc(turn, session)
            languages = self._connection.languages.get(session["chat_app_id"], ())
            doc["terms"] = search.turn_terms(turn, languages)
            await turns.insert_one(doc, session=s)
        except DuplicateKeyError as exc:
            raise _SeqTaken(turn.seq) from exc
        counted = await sessions.find_one_and_update(
            {"_id": new.session_id, "turn_count": count, STATE: {"$ne": DELETING}},
            _counters(turn, reveal=reveal, retention_days=retention_days),
            return_document=ReturnDocument.AFTER,
            session=s,
        )
        if counted is None:
            # Either another appender counted our turn for us (see _count_stored_turn),
            # or the session is being deleted: then take the turn back.
            counted = await sessions.find_one({"_id": new.session_id}, session=s)
            if counted is None or counted.get(STATE) == DELETING:
                await turns.delete_one({"_id": turn.id}, session=s)
                raise session_not_found(new.session_id)
        return turn, codec.session_from(counted)

    async def _count_stored_turn(self, session_id: str, seq: int) -> None:
        """Apply the counters of the stored turn `seq` if nobody has yet (its appender is
        between its two steps, or died there). Idempotent: filtered on turn_count."""
        doc = await self._connection.turns.find_one({"session_id": session_id, "seq": seq})
        if doc is None:
            return
        await self._connection.sessions.update_one(
            {"_id": session_id, "turn_count": seq - 1},
            _counters(codec.turn_from(doc), reveal=False),
        )

    async def get_turn(self, turn_id: str) -> Turn | None:
        doc = await self._connection.turns.find_one({"_id": turn_id})
        return None if doc is None else codec.turn_from(doc)

    async def list_turns(
        self,
        session_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int,
        newest_first: bool = False,
    ) -> list[Turn]:
        if limit <= 0:
            return []
        query: Doc = {"session_id": session_id}
        seq: Doc = {}
        if after_seq is not None:
            seq["$gt"] = after_seq
        if before_seq is not None:
            seq["$lt"] = before_seq
        if seq:
            query["seq"] = seq
        cursor = (
            self._connection.turns.find(query).sort("seq", -1 if newest_first else 1).limit(limit)
        )
        return [codec.turn_from(d) for d in await cursor.to_list(None)]

    async def conversation(
        self, session_id: str, *, limit: int, newest_first: bool = False, chars: int
    ) -> list[TurnText]:
        if limit <= 0:
            return []
        query = {
            "session_id": session_id,
            "role": {"$in": [TurnRole.USER.value, TurnRole.ASSISTANT.value]},
            "content": {"$regex": r"\S"},
        }
        cursor = (
            self._connection.turns.find(query, {"role": 1, "content": 1})
            .sort("seq", -1 if newest_first else 1)
            .limit(limit)
        )
        return [
            TurnText(TurnRole(d["role"]), d["content"][:chars]) for d in await cursor.to_list(None)
        ]

    async def set_verification(self, turn_id: str, verification: Verification) -> Turn | None:
        update = {"$set": {"verification": codec.verification_doc(verification)}}
        return await self._annotate(turn_id, update, verification.verified_at)

    async def add_feedback(self, turn_id: str, feedback: Feedback) -> Turn | None:
        # One atomic update: drop this person's earlier feedback of this kind (a stored item
        # without an entity is by a user of the session's), append the new one. Values go
        # in as $literal so that text starting with "$" stays text.
        others = {
            "$filter": {
                "input": {"$ifNull": ["$feedback", []]},
                "as": "f",
                "cond": {
                    "$or": [
                        {"$ne": ["$$f.user_id", {"$literal": feedback.user_id}]},
                        {
                            "$ne": [
                                {"$ifNull": ["$$f.entity_id", "$entity_id"]},
                                {"$literal": feedback.entity_id},
                            ]
                        },
                        {"$ne": ["$$f.kind", {"$literal": feedback.kind.value}]},
                    ]
                },
            }
        }
        added = {"$literal": [codec.feedback_doc(feedback)]}
        replace = [{"$set": {"feedback": {"$concatArrays": [others, added]}}}]
        return await self._annotate(turn_id, replace, feedback.at)

    async def _annotate(self, turn_id: str, update: Doc | list[Doc], at: datetime) -> Turn | None:
        """Apply `update` to the turn and move its session's updated_at to `at` (if later),
        together; the turn as updated, None when there is no such turn."""

        async def work(s: DriverSession) -> Turn | None:
            doc = await self._connection.turns.find_one_and_update(
                {"_id": turn_id}, update, return_document=ReturnDocument.AFTER, session=s
            )
            if doc is None:
                return None
            await self._connection.sessions.update_one(
                {"_id": doc["session_id"]}, {"$max": time_fields("updated_at", at)}, session=s
            )
            return codec.turn_from(doc)

        return await self._connection.atomic(work)
