"""The MongoDB store: collections `sessions`, `turns`, `pins`, `shares`,
`share_link_visits`, `audit` and `templates` (see indexes.py), reached through the async
driver that driver.py wraps.

Atomic writes across collections
--------------------------------
At `open` the store asks the server `hello`. A replica set member or a mongos supports
multi-document transactions: then every write that touches several collections (create a
session with its first turn, append a turn, delete a session with its turns, pins, shares
and link visits, create or revoke a share with its audit event, record a link visit, the
expiry sweep, erasing a person's turns in one session) runs in one transaction through
`with_transaction`, which retries the whole unit on transient errors (write conflicts,
elections) and unknown commit results.

A standalone server has no transactions. The same code then runs step by step, ordered so
that an interruption at any point leaves nothing half-done that a reader can see, and so
that running it again (a retry, or the recovery sweep) finishes it:

- Audit events travel in an *outbox*: the write that changes a session, share or link
  visit pushes its event into that document's `outbox` array in the same single-document
  update, then copies it into `audit` (an upsert keyed by the event's domain id, so a
  second copy is a no-op) and pulls it from the outbox. A crash in between leaves the
  event in the outbox, where recovery finds it.
- Deleting a session first marks it `state: "deleting"` (with its audit event in the
  outbox). Every read treats a marked session as gone, and every write to a session
  (a tag change with its event, in the session's outbox) is conditional on its not being
  marked, so nothing about it is added to the trail after the mark but events already on
  their way. Then turns, pins, shares and link visits go, the outbox's events are copied
  to `audit`, the earlier events about the session are redacted (all but the deletion's
  own), and the session document goes last. Deleting a marked session again, or recovery,
  finishes the work, the redaction included: the store holds the redaction rule it is
  built with for that.
- A session created with its first turn is inserted hidden (`state: "creating"`); the
  same update that counts the turn reveals it. If the turn fails, the hidden session is
  removed; if the process dies, recovery removes hidden sessions older than an hour.
- Recovery runs at `open` and before every expiry sweep (`expire_due_shares`, which the
  server calls every SESSIONHUB_SHARE_EXPIRY_SWEEP_SECONDS).

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

What mongomock (the test double) cannot show
--------------------------------------------
mongomock has no sessions or transactions and does not answer `hello`, so against it the
store always takes the step-by-step path; the transactional path runs only against a real
replica set (the contract suite with MONGODB_URL). mongomock runs each operation to
completion without yielding, so the contract suite wraps it in a double that yields to
the event loop before every operation, which interleaves concurrent appends; it cannot
interleave *inside* an operation as a real server does. It has no `$search` (the Atlas
path, atlas.py, is unit-tested as a pipeline and runs only where MONGODB_ATLAS_SEARCH says
a server has it), and TTL indexes are recorded but never expire anything. Durability,
write concerns, elections and network failures are not simulated at all.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, ParamSpec, TypeVar

from bson.errors import BSONError
from pymongo import ReturnDocument
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from ...domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    LimitExceeded,
    StoreUnavailable,
    session_not_found,
)
from ...domain.models import (
    ERASED_AUTHOR,
    JSON,
    AuditEvent,
    AuditFilter,
    EntityTemplate,
    ErasureCounts,
    Feedback,
    GranteeKind,
    GranteeScope,
    KeysetCursor,
    NewTurn,
    OwnerScope,
    Pin,
    Session,
    SessionCursor,
    SessionFilter,
    SessionStatus,
    Share,
    TitleSource,
    Turn,
    TurnRole,
    TurnText,
    Verification,
)
from ...domain.query import SearchRequest, SessionHit
from ...domain.timecodec import from_micros
from . import atlas, codec, driver, indexes, search, upgrades
from .codec import OUTBOX, STATE, Doc, time_fields, us

T = TypeVar("T")
P = ParamSpec("P")

AFTER = ReturnDocument.AFTER
VISIBLE: Doc = {STATE: {"$exists": False}}
CREATING = "creating"
DELETING = "deleting"
# A hidden session whose creation has not finished after this long was abandoned.
CREATION_GRACE = timedelta(hours=1)
DAY_US = 86_400_000_000
# On a session: the people whose erasure found a title to take back there and has not yet
# taken it (see `_empty_turns_of`).
TAKE_BACK_TITLE = "take_back_title"
# Appends that lose the race for a seq retry; this bounds pathological contention.
MAX_SEQ_ATTEMPTS = 1000
RECOVERY_BATCH = 100
# Replica-set members answer `hello` with a setName; mongos with msg "isdbgrid".
MONGOS = "isdbgrid"


class _SeqTaken(Exception):
    """Another appender already stored the turn with this seq (or the turn id exists)."""

    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.seq = seq


def _translated(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Driver errors become domain errors here, at the boundary, with the cause chained."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except DomainError:
            raise
        except DuplicateKeyError as exc:
            raise Conflict("The change conflicts with stored data (duplicate key).") from exc
        except ConnectionFailure as exc:
            # ServerSelectionTimeoutError, NetworkTimeout and AutoReconnect are kinds of it.
            raise StoreUnavailable(f"MongoDB could not be reached: {exc}") from exc
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB could not complete the request: {exc}") from exc
        except (BSONError, OverflowError) as exc:
            # DocumentTooLarge, NUL in a key, integers past 64 bits.
            raise InvalidInput(f"The value cannot be stored: {exc}") from exc

    return wrapper


def _live_at(now_us: int) -> Doc:
    """Not expired at `now_us`: no expiry (null or absent), or a later one."""
    return {"$or": [{"expires_at_us": None}, {"expires_at_us": {"$gt": now_us}}]}


def _title_version_is(version: int) -> Doc:
    """The session's title changed `version` times (documents written before the count
    existed have none: 0)."""
    if version == 0:
        return {"title_version": {"$in": [0, None]}}
    return {"title_version": version}


def _older_than(field: str, at_us: int, doc_id: str) -> Doc:
    """Keyset condition: strictly after (at, id) in a newest-first order."""
    return {"$or": [{field: {"$lt": at_us}}, {field: at_us, "_id": {"$lt": doc_id}}]}


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
        update["$unset"] = {STATE: ""}
    return update


SearchMode = Literal["stems", "atlas"]
SEARCH_MODES: tuple[SearchMode, ...] = ("stems", "atlas")


class MongoStore:
    """The Store protocol on MongoDB. `client` is a Motor client (or a test double with
    the same surface); `redact` the rule that cuts the audit details of a deleted session
    down (the one the domain passes to every deletion: recovery finishes deletions that
    were interrupted, with no domain call to pass it); `transactions` None means: ask the
    server at `open`. `search_mode` chooses how `search` runs: "stems" on the stored stems
    (search.py, any MongoDB), or "atlas" through Atlas Search `$search` (atlas.py; needs
    the indexes of atlas_search_index.json, applied with `sessionhub mongo
    apply-search-index`)."""

    def __init__(
        self,
        client: Any,
        database: str,
        *,
        redact: Callable[[JSON], JSON],
        transactions: bool | None = None,
        search_mode: SearchMode = "stems",
    ) -> None:
        if search_mode not in SEARCH_MODES:
            raise ValueError(f"search_mode must be one of {SEARCH_MODES}, not {search_mode!r}")
        self._client = client
        self._db = client[database]
        self._sessions = self._db[indexes.SESSIONS]
        self._turns = self._db[indexes.TURNS]
        self._pins = self._db[indexes.PINS]
        self._shares = self._db[indexes.SHARES]
        self._visits = self._db[indexes.LINK_VISITS]
        self._audit = self._db[indexes.AUDIT]
        self._templates = self._db[indexes.TEMPLATES]
        self._redact = redact
        self._transactions = transactions
        self._search_mode: SearchMode = search_mode

    @classmethod
    def from_url(
        cls,
        url: str,
        database: str,
        *,
        redact: Callable[[JSON], JSON],
        server_selection_timeout_ms: int | None = None,
        search_mode: SearchMode = "stems",
    ) -> MongoStore:
        client = driver.connect(url, server_selection_timeout_ms=server_selection_timeout_ms)
        return cls(client, database, redact=redact, search_mode=search_mode)

    @property
    def search_mode(self) -> SearchMode:
        return self._search_mode

    @property
    def transactions(self) -> bool:
        """Whether multi-document writes run in transactions (known after `open`)."""
        return bool(self._transactions)

    # Lifecycle

    @_translated
    async def open(self) -> None:
        if self._transactions is None:
            self._transactions = await self._server_has_transactions()
        await indexes.ensure(self._db)
        await self._recover(datetime.now(UTC))
        await upgrades.run_pending(self._db)

    async def _server_has_transactions(self) -> bool:
        try:
            hello = await self._client.admin.command("hello")
        except NotImplementedError:
            # mongomock does not implement `hello`; it is a standalone without transactions.
            return False
        return bool(hello.get("setName")) or hello.get("msg") == MONGOS

    async def close(self) -> None:
        driver.close(self._client)

    @_translated
    async def check_ready(self) -> None:
        """The primary answers (a command goes to the primary, where writes go). A full
        disk or a lost volume is mongod's to refuse: it stops rather than take writes."""
        await self._db.command("ping")

    async def _atomic(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run `work(session)` in a transaction when the server has them, else directly
        with session None (work is then written to be safe step by step)."""
        if self._transactions:
            return await driver.in_transaction(self._client, work)
        return await work(None)

    # Sessions

    @_translated
    async def create_session(
        self, session: Session, first_turn: NewTurn | None, max_turns: int
    ) -> tuple[Session, Turn | None]:
        inserted = False

        async def work(s: Any) -> tuple[Session, Turn | None]:
            nonlocal inserted
            doc = codec.session_doc(session)
            doc["title_terms"] = search.term_set(session.title)
            if first_turn is not None:
                doc[STATE] = CREATING
            await self._sessions.insert_one(doc, session=s)
            inserted = True
            if first_turn is None:
                return session, None
            try:
                turn, stored = await self._append_once(first_turn, max_turns, s, reveal=True)
            except _SeqTaken as exc:
                raise Conflict(f"Turn {first_turn.id!r} already exists.") from exc
            return stored, turn

        try:
            return await self._atomic(work)
        except BaseException:
            if inserted and first_turn is not None and not self._transactions:
                await self._discard_hidden(session.id, first_turn.id)
            raise

    async def _discard_hidden(self, session_id: str, turn_id: str) -> None:
        """Undo a session created hidden whose first turn failed. Best effort: if this
        fails as well, recovery removes the hidden session later."""
        try:
            await self._turns.delete_one({"_id": turn_id, "session_id": session_id})
            await self._sessions.delete_one({"_id": session_id, STATE: CREATING})
        except PyMongoError:
            pass

    @_translated
    async def get_session(self, session_id: str) -> Session | None:
        doc = await self._sessions.find_one({"_id": session_id, **VISIBLE})
        return None if doc is None else codec.session_from(doc)

    @_translated
    async def rename_session(
        self,
        session_id: str,
        title: str,
        source: TitleSource,
        at: datetime,
        *,
        if_title_version: int | None = None,
    ) -> Session | None:
        query: Doc = {"_id": session_id, **VISIBLE}
        if source is not TitleSource.MANUAL:
            query["title_source"] = {"$ne": TitleSource.MANUAL.value}
        if if_title_version is not None:
            query.update(_title_version_is(if_title_version))
        update = {
            "$set": {
                "title": title,
                "title_source": source.value,
                "title_terms": search.term_set(title),
                **time_fields("updated_at", at),
            },
            "$inc": {"title_version": 1},
        }
        doc = await self._sessions.find_one_and_update(query, update, return_document=AFTER)
        return None if doc is None else codec.session_from(doc)

    @_translated
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
        doc = await self._sessions.find_one_and_update(
            {"_id": session_id, **VISIBLE}, update, return_document=AFTER
        )
        return None if doc is None else codec.session_from(doc)

    @_translated
    async def set_tags(
        self, session_id: str, tags: list[str], at: datetime, audit: AuditEvent | None = None
    ) -> Session | None:
        # Tags live on the session document only: the listing, $text and Atlas Search paths
        # all filter on sessions.tags, so nothing else needs rewriting. The event goes into
        # the session's outbox in the same update: never about a session already marked
        # for deletion, and one marked later delivers it before redacting.
        update: Doc = {"$set": {"tags": list(dict.fromkeys(tags)), **time_fields("updated_at", at)}}
        events = [] if audit is None else [codec.audit_doc(audit)]
        if events:
            update["$push"] = {OUTBOX: {"$each": events}}

        async def work(s: Any) -> Session | None:
            doc = await self._sessions.find_one_and_update(
                {"_id": session_id, **VISIBLE}, update, return_document=AFTER, session=s
            )
            if doc is None:
                return None
            if events:
                await self._deliver(self._sessions, session_id, events, s)
            return codec.session_from(doc)

        return await self._atomic(work)

    @_translated
    async def set_status(
        self, session_id: str, status: SessionStatus, at: datetime
    ) -> Session | None:
        update = {"$set": {"status": status.value, **time_fields("updated_at", at)}}
        doc = await self._sessions.find_one_and_update(
            {"_id": session_id, **VISIBLE}, update, return_document=AFTER
        )
        return None if doc is None else codec.session_from(doc)

    @_translated
    async def apply_retention(self, chat_app_id: str, days: int) -> int:
        # One server-side update (each document is updated atomically on its own, and
        # nothing is held across documents). `expires_at_us` is what is read back and
        # compared; its BSON-date twin is informational (no TTL index reads it any more,
        # see indexes.py) and is cleared here rather than left stale.
        result = await self._sessions.update_many(
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

    @_translated
    async def tag_counts(
        self, scope: OwnerScope, now: datetime, limit: int
    ) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        match: Doc = {
            "entity_id": scope.entity_id,
            **VISIBLE,
            "tags.0": {"$exists": True},
            **_live_at(us(now)),
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
        groups = await self._sessions.aggregate(pipeline).to_list(None)
        return [(g["_id"], g["n"]) for g in groups]

    @_translated
    async def delete_session(
        self, session_id: str, audit: AuditEvent, redact: Callable[[JSON], JSON]
    ) -> bool:
        return await self._delete(session_id, audit, {}, redact) is not None

    @_translated
    async def remove_expired(
        self,
        now: datetime,
        chat_app_id: str | None,
        batch: int,
        dry_run: bool,
        audit_for: Callable[[Session], AuditEvent],
        redact: Callable[[JSON], JSON],
        entity_id: str | None = None,
        after_id: str | None = None,
    ) -> list[Session]:
        if batch <= 0:
            return []
        expired: Doc = {"expires_at_us": {"$ne": None, "$lte": us(now)}}
        query: Doc = {**VISIBLE, **expired}
        if chat_app_id is not None:
            query["chat_app_id"] = chat_app_id
        if entity_id is not None:
            query["entity_id"] = entity_id
        if after_id is not None:
            query["_id"] = {"$gt": after_id}
        docs = await self._sessions.find(query).sort([("_id", 1)]).limit(batch).to_list(None)
        sessions = [codec.session_from(d) for d in docs]
        if dry_run:
            return sessions
        # Each session is deleted on its own, as deleteSession does, and only if it is
        # still expired (an append in between moves the expiry and keeps it).
        return [
            s
            for s in sessions
            if await self._delete(s.id, audit_for(s), expired, redact) is not None
        ]

    @_translated
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
            doc = await self._sessions.find_one({"_id": session_id, **VISIBLE})
            if doc is None:
                continue
            session = codec.session_from(doc)
            count = await self._delete(session.id, audit_for(session), {}, redact)
            if count is not None:
                erased.append(session)
                redacted += count
        return erased, redacted

    @_translated
    async def erase_contributions(
        self,
        entity_id: str,
        user_id: str,
        at: datetime,
        batch: int,
        redact: Callable[[JSON], JSON],
        opening_words: Callable[[str], str],
    ) -> tuple[ErasureCounts, list[str]]:
        counts, retitled = ErasureCounts(), []
        person = {"entity_id": entity_id, "user_id": user_id}
        # Sessions of their entity they took part in (their own are gone by now), then
        # those of other entities they took part in as an external grantee. A user of
        # another entity with the same id is someone else, and keeps everything.
        joined = await (
            self._sessions.find(
                {"entity_id": entity_id, "participants": user_id, "owner_id": {"$ne": user_id}}
            )
            .limit(batch)
            .to_list(None)
        )
        visited = await (
            self._sessions.find({"external_participants": {"$elemMatch": person}})
            .limit(batch)
            .to_list(None)
        )
        emptied = {
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
            # An emptied turn's author is `erased`, of the session's entity.
            emptied_here = {**emptied, "author_entity_id": doc["entity_id"]}
            emptied_count, took_title = await self._atomic(
                lambda s, doc=doc, own=own, emptied_here=emptied_here: self._empty_turns_of(
                    doc["_id"], user_id, person, own, emptied_here, at, opening_words, s
                )
            )
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
            rated = await self._turns.find(rated_query, {"_id": 1}).limit(batch).to_list(None)
            if rated:
                result = await self._turns.update_many(
                    {"_id": {"$in": [d["_id"] for d in rated]}}, {"$pull": {"feedback": pull}}
                )
                counts.feedback += result.modified_count
        mine = {"entity_id": entity_id, "user_id": user_id}
        counts.pins = (await self._pins.delete_many(mine)).deleted_count
        granted = {"grantee_entity_id": entity_id, "grantee_user_id": user_id}
        share_ids = [d["_id"] for d in await self._shares.find(granted, {"_id": 1}).to_list(None)]
        if share_ids:
            await self._visits.delete_many({"share_id": {"$in": share_ids}})
            counts.shares = (
                await self._shares.delete_many({"_id": {"$in": share_ids}})
            ).deleted_count
        counts.link_visits = (await self._visits.delete_many(mine)).deleted_count
        # Shares and templates are made by managers and admins, always of the row's entity.
        for collection, field in (
            (self._shares, "created_by"),
            (self._shares, "revoked_by"),
            (self._templates, "created_by"),
        ):
            await collection.update_many(
                {"entity_id": entity_id, field: user_id}, {"$set": {field: ERASED_AUTHOR}}
            )
        # Their events in their entity's trail; an event that names another actor entity is
        # by someone else who has the same id.
        counts.audit_events = await self._redact_audit(
            {
                "entity_id": entity_id,
                "actor_id": user_id,
                "details.actorEntityId": {"$exists": False},
            },
            redact,
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
        s: Any,
    ) -> tuple[int, bool]:
        """Empty the person's turns in one session and let them leave it; how many turns
        were emptied, and whether its title was taken back. In a transaction where the
        server has them; step by step otherwise, in an order a rerun finishes: a title that
        needs taking back is first marked on the session (TAKE_BACK_TITLE) while the turns
        that say so are still there, and the mark goes in the one update that takes the
        title back and the person out of the session, so a rerun after the turns were
        emptied still finds the session (the person is still among its people) and the
        mark."""
        # No entity stored: written before people carried theirs, the session's.
        theirs: Doc = {
            "session_id": session_id,
            "author_id": user_id,
            "author_entity_id": {"$in": [None, person["entity_id"]]}
            if own
            else person["entity_id"],
        }
        said = await self._turns.find_one(
            {
                **theirs,
                "role": {"$in": [TurnRole.USER.value, TurnRole.ASSISTANT.value]},
                "content": {"$regex": r"\S"},
            },
            {"_id": 1},
            session=s,
        )
        if said is not None:
            await self._sessions.update_one(
                {"_id": session_id, "title_source": {"$ne": TitleSource.MANUAL.value}},
                {"$addToSet": {TAKE_BACK_TITLE: person}},
                session=s,
            )
        result = await self._turns.update_many(theirs, {"$set": emptied}, session=s)
        leave = {"participants": user_id} if own else {"external_participants": person}
        update: Doc = {"$pull": {**leave, TAKE_BACK_TITLE: person}}
        marked = await self._sessions.find_one(
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
                self._turns.find(
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
        await self._sessions.update_one({"_id": session_id}, update, session=s)
        return result.modified_count, marked is not None

    async def _redact_audit(
        self, query: Doc, redact: Callable[[JSON], JSON], limit: int, s: Any = None
    ) -> int:
        docs = await (
            self._audit.find(
                {**query, "details.redacted": {"$ne": True}}, {"details": 1}, session=s
            )
            .limit(limit)
            .to_list(None)
        )
        for doc in docs:
            await self._audit.update_one(
                {"_id": doc["_id"]}, {"$set": {"details": redact(doc.get("details"))}}, session=s
            )
        return len(docs)

    async def _delete(
        self, session_id: str, audit: AuditEvent, condition: Doc, redact: Callable[[JSON], JSON]
    ) -> int | None:
        """Delete the session (if it matches `condition`); how many earlier events about it
        were redacted, None when nothing was deleted. The earlier events keep no content of
        the session (tag names ...): they are redacted after the session is marked, when
        no write can add another (see `_finish_delete`)."""

        async def work(s: Any) -> int | None:
            marked = await self._sessions.find_one_and_update(
                {"_id": session_id, **VISIBLE, **condition},
                {"$set": {STATE: DELETING}, "$push": {OUTBOX: codec.audit_doc(audit)}},
                projection={"_id": 1},
                session=s,
            )
            if marked is None:
                if condition:
                    return None  # no longer expired, or someone else's deletion
                # Nothing visible to delete, unless an earlier attempt was interrupted.
                pending = await self._sessions.find_one(
                    {"_id": session_id, STATE: DELETING}, {"_id": 1}, session=s
                )
                if pending is None:
                    return None
            return await self._finish_delete(session_id, redact, s)

        return await self._atomic(work)

    async def _finish_delete(self, session_id: str, redact: Callable[[JSON], JSON], s: Any) -> int:
        """The rest of a deletion once the session is marked; safe to run again. How many
        earlier events about the session it redacted: all but the deletion's own, those
        its outbox still held included (a tag change's, written just before the mark)."""
        for children in (self._turns, self._pins, self._visits, self._shares):
            await children.delete_many({"session_id": session_id}, session=s)
        doc = await self._sessions.find_one(
            {"_id": session_id, STATE: DELETING}, {"entity_id": 1, OUTBOX: 1}, session=s
        )
        if doc is None:
            return 0
        outbox = doc.get(OUTBOX) or []
        for event in outbox:
            await self._put_audit(event, s)
        # The mark pushed the deletion's event last, and nothing is pushed to a marked
        # session.
        deletion_id = outbox[-1]["_id"] if outbox else None
        redacted = await self._redact_audit(
            {
                "entity_id": doc["entity_id"],
                "target": f"session:{session_id}",
                "_id": {"$ne": deletion_id},
            },
            redact,
            0,
            s,
        )
        await self._sessions.delete_one({"_id": session_id, STATE: DELETING}, session=s)
        return redacted

    @_translated
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
            conditions.append(_live_at(us(session_filter.live_at)))
        if after is not None:
            conditions.append(
                _older_than("last_activity_at_us", us(after.last_activity_at), after.session_id)
            )
        if conditions:
            query["$and"] = conditions
        cursor = (
            self._sessions.find(query).sort([("last_activity_at_us", -1), ("_id", -1)]).limit(limit)
        )
        return [codec.session_from(d) for d in await cursor.to_list(None)]

    # Turns

    @_translated
    async def append_turn(
        self, turn: NewTurn, max_turns: int, retention_days: int | None = None
    ) -> tuple[Turn, Session]:
        for _ in range(MAX_SEQ_ATTEMPTS):
            try:
                return await self._atomic(
                    lambda s: self._append_once(
                        turn, max_turns, s, reveal=False, retention_days=retention_days
                    )
                )
            except _SeqTaken as taken:
                if await self._turns.find_one({"_id": turn.id}, {"_id": 1}) is not None:
                    raise Conflict(f"Turn {turn.id!r} already exists.") from None
                await self._count_stored_turn(turn.session_id, taken.seq)
        raise StoreUnavailable("Too many concurrent appends to this session; try again.")

    async def _append_once(
        self,
        new: NewTurn,
        max_turns: int,
        s: Any,
        *,
        reveal: bool,
        retention_days: int | None = None,
    ) -> tuple[Turn, Session]:
        """One attempt: read the count, store the turn as the next seq, count it.
        `reveal` appends the first turn of a session created hidden, and shows it."""
        state: Doc = {STATE: CREATING} if reveal else VISIBLE
        session = await self._sessions.find_one({"_id": new.session_id, **state}, session=s)
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
            doc["terms"] = search.turn_terms(turn)
            await self._turns.insert_one(doc, session=s)
        except DuplicateKeyError as exc:
            raise _SeqTaken(turn.seq) from exc
        counted = await self._sessions.find_one_and_update(
            {"_id": new.session_id, "turn_count": count, STATE: {"$ne": DELETING}},
            _counters(turn, reveal=reveal, retention_days=retention_days),
            return_document=AFTER,
            session=s,
        )
        if counted is None:
            # Either another appender counted our turn for us (see _count_stored_turn),
            # or the session is being deleted: then take the turn back.
            counted = await self._sessions.find_one({"_id": new.session_id}, session=s)
            if counted is None or counted.get(STATE) == DELETING:
                await self._turns.delete_one({"_id": turn.id}, session=s)
                raise session_not_found(new.session_id)
        return turn, codec.session_from(counted)

    async def _count_stored_turn(self, session_id: str, seq: int) -> None:
        """Apply the counters of the stored turn `seq` if nobody has yet (its appender is
        between its two steps, or died there). Idempotent: filtered on turn_count."""
        doc = await self._turns.find_one({"session_id": session_id, "seq": seq})
        if doc is None:
            return
        await self._sessions.update_one(
            {"_id": session_id, "turn_count": seq - 1},
            _counters(codec.turn_from(doc), reveal=False),
        )

    @_translated
    async def get_turn(self, turn_id: str) -> Turn | None:
        doc = await self._turns.find_one({"_id": turn_id})
        return None if doc is None else codec.turn_from(doc)

    @_translated
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
        cursor = self._turns.find(query).sort("seq", -1 if newest_first else 1).limit(limit)
        return [codec.turn_from(d) for d in await cursor.to_list(None)]

    @_translated
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
            self._turns.find(query, {"role": 1, "content": 1})
            .sort("seq", -1 if newest_first else 1)
            .limit(limit)
        )
        return [
            TurnText(TurnRole(d["role"]), d["content"][:chars]) for d in await cursor.to_list(None)
        ]

    async def _touch_session(self, session_id: str, at: datetime, s: Any) -> None:
        await self._sessions.update_one(
            {"_id": session_id}, {"$max": time_fields("updated_at", at)}, session=s
        )

    @_translated
    async def set_verification(self, turn_id: str, verification: Verification) -> Turn | None:
        async def work(s: Any) -> Turn | None:
            doc = await self._turns.find_one_and_update(
                {"_id": turn_id},
                {"$set": {"verification": codec.verification_doc(verification)}},
                return_document=AFTER,
                session=s,
            )
            if doc is None:
                return None
            await self._touch_session(doc["session_id"], verification.verified_at, s)
            return codec.turn_from(doc)

        return await self._atomic(work)

    @_translated
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

        async def work(s: Any) -> Turn | None:
            added = {"$literal": [codec.feedback_doc(feedback)]}
            replace = [{"$set": {"feedback": {"$concatArrays": [others, added]}}}]
            doc = await self._turns.find_one_and_update(
                {"_id": turn_id}, replace, return_document=AFTER, session=s
            )
            if doc is None:
                return None
            await self._touch_session(doc["session_id"], feedback.at, s)
            return codec.turn_from(doc)

        return await self._atomic(work)

    # Search

    @_translated
    async def search(self, request: SearchRequest) -> list[SessionHit]:
        if self._search_mode == "atlas":
            return await atlas.search_sessions(self._turns, request)
        return await search.search(self._sessions, self._turns, VISIBLE, request)

    # Pins

    @_translated
    async def pin(self, entity_id: str, pin: Pin) -> None:
        key = {"entity_id": entity_id, "user_id": pin.user_id, "session_id": pin.session_id}
        # A concurrent pin of the same session may win the upsert: its pinned_at stays.
        with contextlib.suppress(DuplicateKeyError):
            await self._pins.update_one(
                key, {"$setOnInsert": time_fields("pinned_at", pin.pinned_at)}, upsert=True
            )

    @_translated
    async def unpin(self, entity_id: str, user_id: str, session_id: str) -> None:
        await self._pins.delete_one(
            {"entity_id": entity_id, "user_id": user_id, "session_id": session_id}
        )

    @_translated
    async def pinned_session_ids(
        self, entity_id: str, user_id: str, session_ids: list[str]
    ) -> set[str]:
        if not session_ids:
            return set()
        cursor = self._pins.find(
            {"entity_id": entity_id, "user_id": user_id, "session_id": {"$in": session_ids}},
            {"session_id": 1},
        )
        return {d["session_id"] for d in await cursor.to_list(None)}

    @_translated
    async def list_pinned(self, entity_id: str, user_id: str, limit: int) -> list[Session]:
        found: list[Session] = []
        batch = max(limit, 20)
        skip = 0
        while len(found) < limit:
            cursor = (
                self._pins.find({"entity_id": entity_id, "user_id": user_id}, {"session_id": 1})
                .sort([("pinned_at_us", -1), ("session_id", -1)])
                .skip(skip)
                .limit(batch)
            )
            ids = [d["session_id"] for d in await cursor.to_list(None)]
            if not ids:
                break
            found += await self._sessions_in_order(ids)
            if len(ids) < batch:
                break
            skip += batch
        return found[:limit]

    async def _sessions_in_order(self, ids: list[str]) -> list[Session]:
        """The visible sessions among `ids`, in the order of `ids` (the join)."""
        cursor = self._sessions.find({"_id": {"$in": ids}, **VISIBLE})
        docs = {d["_id"]: d for d in await cursor.to_list(None)}
        return [codec.session_from(docs[i]) for i in ids if i in docs]

    # Audit outbox

    async def _put_audit(self, event: Doc, s: Any) -> None:
        """Copy an outbox event into `audit`. Keyed by the event id and never overwriting,
        so copying it twice changes nothing (and no duplicate-key error aborts a
        transaction)."""
        fields = {k: v for k, v in event.items() if k != "_id"}
        with contextlib.suppress(DuplicateKeyError):  # a concurrent copy of the same event
            await self._audit.update_one(
                {"_id": event["_id"]}, {"$setOnInsert": fields}, upsert=True, session=s
            )

    async def _deliver(self, collection: Any, doc_id: Any, events: list[Doc], s: Any) -> None:
        for event in events:
            await self._put_audit(event, s)
        await collection.update_one(
            {"_id": doc_id},
            {"$pull": {OUTBOX: {"_id": {"$in": [e["_id"] for e in events]}}}},
            session=s,
        )

    async def _recover(self, now: datetime) -> None:
        """Finish what an interrupted step-by-step write left: deletions, audit events in
        outboxes, sessions whose creation never finished. Idempotent; a no-op after
        transactional writes."""
        cursor = self._sessions.find({STATE: DELETING}, {"_id": 1}).limit(RECOVERY_BATCH)
        for doc in await cursor.to_list(None):
            session_id = doc["_id"]
            await self._atomic(lambda s, sid=session_id: self._finish_delete(sid, self._redact, s))
        # Tag changes whose event did not reach `audit` (marked sessions' are delivered
        # above).
        cursor = self._sessions.find(
            {"outbox._id": {"$exists": True}, **VISIBLE}, {OUTBOX: 1}
        ).limit(RECOVERY_BATCH)
        for doc in await cursor.to_list(None):
            await self._deliver(self._sessions, doc["_id"], doc.get(OUTBOX) or [], None)
        for collection in (self._shares, self._visits, self._templates):
            cursor = collection.find({"outbox._id": {"$exists": True}}, {OUTBOX: 1}).limit(
                RECOVERY_BATCH
            )
            for doc in await cursor.to_list(None):
                await self._deliver(collection, doc["_id"], doc.get(OUTBOX) or [], None)
        # A template deletion interrupted after its event reached `audit`.
        await self._templates.delete_many({STATE: DELETING, OUTBOX: {"$size": 0}})
        abandoned = {STATE: CREATING, "created_at_us": {"$lt": us(now - CREATION_GRACE)}}
        cursor = self._sessions.find(abandoned, {"_id": 1}).limit(RECOVERY_BATCH)
        for doc in await cursor.to_list(None):
            await self._turns.delete_many({"session_id": doc["_id"]})
            await self._sessions.delete_one({"_id": doc["_id"], STATE: CREATING})

    # Shares

    @_translated
    async def create_share(self, share: Share, audit: AuditEvent) -> Share:
        async def work(s: Any) -> Share:
            session = await self._sessions.find_one({"_id": share.session_id, **VISIBLE}, session=s)
            if session is None:
                raise session_not_found(share.session_id)
            doc = codec.share_doc(share, session)
            doc[OUTBOX] = [codec.audit_doc(audit)]
            await self._shares.insert_one(doc, session=s)
            still = await self._sessions.find_one(
                {"_id": share.session_id, **VISIBLE}, {"_id": 1}, session=s
            )
            if still is None:
                # Deleted meanwhile (step-by-step mode): the share must not outlive it.
                await self._shares.delete_one({"_id": share.id}, session=s)
                raise session_not_found(share.session_id)
            await self._deliver(self._shares, share.id, doc[OUTBOX], s)
            return share

        return await self._atomic(work)

    @_translated
    async def get_share(self, share_id: str) -> Share | None:
        doc = await self._shares.find_one({"_id": share_id})
        return None if doc is None else codec.share_from(doc)

    @_translated
    async def share_by_token_hash(self, token_hash: str) -> Share | None:
        doc = await self._shares.find_one({"token_hash": token_hash})
        return None if doc is None else codec.share_from(doc)

    @_translated
    async def list_shares(self, session_id: str) -> list[Share]:
        cursor = self._shares.find({"session_id": session_id}).sort(
            [("created_at_us", 1), ("_id", 1)]
        )
        return [codec.share_from(d) for d in await cursor.to_list(None)]

    @_translated
    async def revoke_share(
        self, share_id: str, at: datetime, by: str, audit: AuditEvent
    ) -> Share | None:
        async def work(s: Any) -> Share | None:
            doc = await self._shares.find_one_and_update(
                {"_id": share_id, "revoked_at_us": None},
                {
                    "$set": {**time_fields("revoked_at", at), "revoked_by": by},
                    "$push": {OUTBOX: codec.audit_doc(audit)},
                },
                return_document=AFTER,
                session=s,
            )
            if doc is None:
                doc = await self._shares.find_one({"_id": share_id}, session=s)
                return None if doc is None else codec.share_from(doc)
            await self._deliver(self._shares, share_id, [codec.audit_doc(audit)], s)
            return codec.share_from(doc)

        return await self._atomic(work)

    @_translated
    async def record_link_visit(
        self, share: Share, entity_id: str, user_id: str, at: datetime, audit: AuditEvent | None
    ) -> None:
        key = {"entity_id": entity_id, "user_id": user_id, "share_id": share.id}
        update: Doc = {"$set": {"session_id": share.session_id, **time_fields("opened_at", at)}}
        events = [] if audit is None else [codec.audit_doc(audit)]
        if events:
            update["$push"] = {OUTBOX: {"$each": events}}

        async def work(s: Any) -> None:
            try:
                await self._visits.update_one(key, update, upsert=True, session=s)
            except DuplicateKeyError:
                # A concurrent first visit inserted it; now it exists and this updates it.
                await self._visits.update_one(key, update, session=s)
            if events:
                visit = await self._visits.find_one(key, {"_id": 1}, session=s)
                if visit is not None:
                    await self._deliver(self._visits, visit["_id"], events, s)

        await self._atomic(work)

    @_translated
    async def opened_link_ids(self, session_id: str, entity_id: str, user_id: str) -> set[str]:
        cursor = self._visits.find(
            {"entity_id": entity_id, "user_id": user_id, "session_id": session_id},
            {"share_id": 1},
        )
        return {d["share_id"] for d in await cursor.to_list(None)}

    @_translated
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
        visits = self._visits.find(
            {"entity_id": scope.entity_id, "user_id": scope.user_id}, {"share_id": 1}
        )
        opened = [d["share_id"] for d in await visits.to_list(None)]
        if opened:
            grants.append({"_id": {"$in": opened}, "grantee_kind": GranteeKind.LINK.value})
        now_us = us(now)
        match: Doc = {
            "$or": grants,
            "revoked_at_us": None,
            "$and": [{"$or": [{"expires_at_us": None}, {"expires_at_us": {"$gt": now_us}}]}],
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
                pipeline.append({"$match": _older_than("shared_at", *position)})
            pipeline += [{"$sort": {"shared_at": -1, "_id": -1}}, {"$limit": want}]
            groups = await self._shares.aggregate(pipeline).to_list(None)
            if not groups:
                break
            sessions = {s.id: s for s in await self._sessions_in_order([g["_id"] for g in groups])}
            for group in groups:
                if group["_id"] in sessions:
                    found.append((sessions[group["_id"]], from_micros(group["shared_at"])))
            if len(groups) < want:
                break
            position = (groups[-1]["shared_at"], groups[-1]["_id"])
        return found

    @_translated
    async def expire_due_shares(
        self, now: datetime, limit: int, audit_for: Callable[[Share], AuditEvent]
    ) -> list[Share]:
        await self._recover(now)
        if limit <= 0:
            return []
        cursor = (
            self._shares.find(
                {
                    "expiry_recorded_at_us": None,
                    "revoked_at_us": None,
                    "expires_at_us": {"$lte": us(now)},
                }
            )
            .sort([("expires_at_us", 1), ("_id", 1)])
            .limit(limit)
        )
        expired = []
        for doc in await cursor.to_list(None):
            share = codec.share_from(doc)
            event = codec.audit_doc(audit_for(share))

            async def claim(s: Any, share_id: str = share.id, event: Doc = event) -> bool:
                claimed = await self._shares.find_one_and_update(
                    {"_id": share_id, "expiry_recorded_at_us": None, "revoked_at_us": None},
                    {"$set": time_fields("expiry_recorded_at", now), "$push": {OUTBOX: event}},
                    projection={"_id": 1},
                    session=s,
                )
                if claimed is None:
                    return False  # another instance recorded it, or it was revoked
                await self._deliver(self._shares, share_id, [event], s)
                return True

            if await self._atomic(claim):
                expired.append(share)
        return expired

    # Audit

    @_translated
    async def append_audit(self, event: AuditEvent) -> None:
        await self._audit.insert_one(codec.audit_doc(event))

    @_translated
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
            query.update(_older_than("at_us", us(after.at), after.id))
        cursor = self._audit.find(query).sort([("at_us", -1), ("_id", -1)]).limit(limit)
        return [codec.audit_from(d) for d in await cursor.to_list(None)]

    # Session templates defined by admins. Step by step, their audit events travel in the
    # template document's outbox, as a share's do; a deletion first marks the template
    # `state: "deleting"` (gone for every read), then delivers the event, then removes it.

    @_translated
    async def create_template(self, template: EntityTemplate, audit: AuditEvent) -> None:
        async def work(s: Any) -> None:
            doc = codec.template_doc(template)
            doc[OUTBOX] = [codec.audit_doc(audit)]
            await self._templates.insert_one(doc, session=s)
            await self._deliver(self._templates, template.id, doc[OUTBOX], s)

        await self._atomic(work)

    @_translated
    async def get_template(self, entity_id: str, template_id: str) -> EntityTemplate | None:
        doc = await self._templates.find_one(
            {"_id": template_id, "entity_id": entity_id, **VISIBLE}
        )
        return None if doc is None else codec.template_from(doc)

    @_translated
    async def list_templates(self, entity_id: str, chat_app_id: str) -> list[EntityTemplate]:
        cursor = self._templates.find(
            {"entity_id": entity_id, "chat_app_id": chat_app_id, **VISIBLE}
        ).sort([("name_key", 1), ("_id", 1)])
        return [codec.template_from(d) for d in await cursor.to_list(None)]

    @_translated
    async def update_template(self, template: EntityTemplate, audit: AuditEvent) -> bool:
        event = codec.audit_doc(audit)

        async def work(s: Any) -> bool:
            updated = await self._templates.find_one_and_update(
                {"_id": template.id, "entity_id": template.entity_id, **VISIBLE},
                {"$set": codec.template_fields(template), "$push": {OUTBOX: event}},
                projection={"_id": 1},
                session=s,
            )
            if updated is None:
                return False
            await self._deliver(self._templates, template.id, [event], s)
            return True

        return await self._atomic(work)

    @_translated
    async def delete_template(self, entity_id: str, template_id: str, audit: AuditEvent) -> bool:
        event = codec.audit_doc(audit)

        async def work(s: Any) -> bool:
            marked = await self._templates.find_one_and_update(
                {"_id": template_id, "entity_id": entity_id, **VISIBLE},
                {"$set": {STATE: DELETING}, "$push": {OUTBOX: event}},
                projection={"_id": 1},
                session=s,
            )
            if marked is None:
                return False
            await self._deliver(self._templates, template_id, [event], s)
            await self._templates.delete_one({"_id": template_id, STATE: DELETING}, session=s)
            return True

        return await self._atomic(work)
