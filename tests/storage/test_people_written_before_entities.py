"""Data written before people carried their entity: bare user ids, which read as people of
the session's entity. The upgrade (SQLite's migration 0015, MongoDB's upgrade step of the
same name at start) rewrites those the stored trail settles as an external grantee's: a
user id with an EXTERNAL INTERACT share of one other entity, who is seen in the trail
acting on the session while the share was live, whose every turn and feedback falls in
that time, and whom no person of the session's entity with that id could have been.
Whatever is in doubt stays a person of the session's entity, as documented in the
migration and in docs/operations.md (Upgrades); rows written since people carry their entity are never
touched.

The old data is written through the store's own API and then stripped of every entity
(the form the old code wrote: a bare user id); the SQLite file is then taken back to
schema version 14 (a store that ran 0014 and not yet 0015), and the MongoDB database (on
mongoeco, over the wire) loses its record of the upgrade, so that the upgrade runs again
when a store next opens it. Rows written by the current code (the entity always stored)
are added after the strip, before the upgrade: what a store that another instance keeps
writing to holds while the upgrade runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sessionhub.domain.clock import new_id
from sessionhub.domain.models import (
    ERASED_AUTHOR,
    AuditEvent,
    Feedback,
    FeedbackKind,
    GranteeKind,
    Person,
    ShareMode,
)
from sessionhub.domain.ports import Store
from sessionhub.domain.redaction import redact_details
from sessionhub.domain.removals import ContributionErasure
from sessionhub.domain.titles import opening_words
from sessionhub.storage.mongo import MongoStore, upgrades
from sessionhub.storage.mongo.driver import connect
from sessionhub.storage.mongo.upgrades import PEOPLE_SETTLED, UPGRADES
from sessionhub.storage.sqlite import migrate
from sessionhub.storage.sqlite.store import SqliteStore

from .test_store_contract import T0, make_session, make_share, make_turn, session_audit

# Each case: a session of alice's (acme) with an EXTERNAL INTERACT share to the globex
# user of the same name, and an old turn by that user id.
GRANTEE = {
    # globex's gina read the session and wrote (and rated alice's turn) while her share
    # was live; acme also has a gina (she owns a session), who had no way in: settled.
    "settled": "gina",
    # bob also has a USER share: acme's bob could have written.
    "both": "bob",
    # carol's turn is older than her share: it cannot be the grantee's.
    "early": "carol",
    # acme's dave is an admin (he erased a user), who writes in every session.
    "admin": "dave",
    # acme's agent wrote on behalf of acme's erin; globex's erin never used her share.
    "on_behalf": "erin",
    # acme's frank wrote in it, leaving no trace there; he archived someone else's session
    # (an admin's reach) elsewhere. globex's frank did read the session.
    "admin_wrote": "frank",
    # An old turn of helen's, and one the current code wrote on behalf of acme's helen
    # (the entity stored): acme's helen was there; globex's helen read it too.
    "mixed": "helen",
}
# Cases in which the user of globex is seen acting on the session while the share was live.
ACTED = {"settled", "both", "early", "admin", "admin_wrote", "mixed"}


def at(minutes: int):
    return T0 + timedelta(minutes=minutes)


@dataclass
class OldWorld:
    sessions: dict[str, str]
    turns: dict[str, str]
    opening_turn: str
    written_since: str


async def write_old_world(store: Store, strip: Callable[[], Awaitable[None]]) -> OldWorld:
    sessions = {name: make_session(app="knowledge") for name in GRANTEE}
    turns: dict[str, str] = {}
    opening_turn = ""
    for name, session in sessions.items():
        user = GRANTEE[name]
        shared_at = at(10) if name == "early" else T0
        await store.create_session(session, None, 10)
        await store.create_share(
            make_share(
                session.id,
                GranteeKind.EXTERNAL,
                "globex",
                user,
                at=shared_at,
                mode=ShareMode.INTERACT,
            ),
            session_audit("share.created", session.id),
        )
        if name in ACTED:
            await store.append_audit(
                AuditEvent(
                    new_id(),
                    "acme",
                    user,
                    "session.read",
                    f"session:{session.id}",
                    at(11),
                    {"access": "INTERACT", "actorEntityId": "globex"},
                )
            )
        opening, _ = await store.append_turn(
            make_turn(session.id, content="Planning the roadmap", at=at(1)), 10
        )
        theirs, _ = await store.append_turn(
            make_turn(session.id, author=user, content=f"{user} notes", at=at(2)), 10
        )
        turns[name] = theirs.id
        if name == "settled":
            opening_turn = opening.id
            await store.add_feedback(
                opening.id,
                Feedback(user, FeedbackKind.THUMBS_UP, "gina's thumbs", at(3), entity_id="acme"),
            )
    await store.create_share(
        make_share(sessions["both"].id, GranteeKind.USER, "acme", "bob", mode=ShareMode.INTERACT),
        session_audit("share.created", sessions["both"].id),
    )
    await store.create_session(make_session(owner="gina"), None, 10)
    elsewhere = make_session()
    await store.create_session(elsewhere, None, 10)
    for actor, action, target in (
        ("dave", "user.erased", "user:zed"),
        ("frank", "session.archived", f"session:{elsewhere.id}"),
    ):
        await store.append_audit(AuditEvent(new_id(), "acme", actor, action, target, T0, {}))
    # As the old code stored every person: a bare user id, read as acme's.
    await strip()
    # The current code, on behalf of acme's helen: her entity is stored.
    since, _ = await store.append_turn(
        make_turn(sessions["mixed"].id, author="helen", content="helen plans", at=at(12)), 10
    )
    return OldWorld({name: s.id for name, s in sessions.items()}, turns, opening_turn, since.id)


async def authors(store: Store, session_id: str) -> list[Person]:
    return [t.author for t in await store.list_turns(session_id, limit=10)]


async def erase(store: Store, entity: str, user: str) -> int:
    erased, _ = await store.erase_contributions(
        ContributionErasure(entity, user, T0, 10, redact_details, opening_words)
    )
    return erased.authored_turns


async def check_upgraded(store: Store, w: OldWorld) -> None:
    # Settled: globex's gina, in her turn, her feedback and the session's people.
    settled = await store.get_session(w.sessions["settled"])
    assert settled.participants == ["alice"]
    assert settled.external_participants == [Person("globex", "gina")]
    assert await authors(store, w.sessions["settled"]) == [
        Person("acme", "alice"),
        Person("globex", "gina"),
    ]
    opening = await store.get_turn(w.opening_turn)
    assert [f.given_by for f in opening.feedback] == [Person("globex", "gina")]
    # In doubt: as before, people of the session's entity.
    for name in ("both", "early", "admin", "on_behalf", "admin_wrote"):
        user = GRANTEE[name]
        session = await store.get_session(w.sessions[name])
        assert (session.participants, session.external_participants) == (["alice", user], [])
        assert await authors(store, w.sessions[name]) == [
            Person("acme", "alice"),
            Person("acme", user),
        ], name
    mixed = w.sessions["mixed"]
    assert await authors(store, mixed) == [Person("acme", n) for n in ("alice", "helen", "helen")]
    assert (await store.get_session(mixed)).external_participants == []

    # acme's erasure of gina does not reach globex's gina's words ...
    assert await erase(store, "acme", "gina") == 0
    assert (await store.get_turn(w.turns["settled"])).content == "gina notes"
    # ... her own entity's does, and only hers.
    erased, _ = await store.erase_contributions(
        ContributionErasure("globex", "gina", T0, 10, redact_details, opening_words)
    )
    assert (erased.authored_turns, erased.feedback, erased.participations) == (1, 1, 1)
    assert (await store.get_turn(w.turns["settled"])).author_id == ERASED_AUTHOR
    assert (await store.get_turn(w.opening_turn)).feedback == []
    assert (await store.get_session(w.sessions["settled"])).external_participants == []
    # What stays in doubt goes with the session's entity's person of that id, never with
    # the other entity's: globex's erasure leaves it, acme's empties it.
    for name in ("on_behalf", "admin_wrote", "both", "mixed"):
        user = GRANTEE[name]
        assert await erase(store, "globex", user) == 0, name
        assert (await store.get_turn(w.turns[name])).content == f"{user} notes", name
    assert (await store.get_turn(w.written_since)).content == "helen plans"
    for name, emptied in (("on_behalf", 1), ("admin_wrote", 1), ("both", 1), ("mixed", 2)):
        assert await erase(store, "acme", GRANTEE[name]) == emptied, name
        assert (await store.get_turn(w.turns[name])).author_id == ERASED_AUTHOR, name
    assert (await store.get_turn(w.written_since)).author_id == ERASED_AUTHOR


async def test_sqlite_upgrade_settles_external_people_written_before_0014(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    store = SqliteStore(path)
    await store.open()

    def bare(conn) -> None:
        conn.execute("UPDATE turns SET author_entity_id = NULL")
        conn.execute(
            "UPDATE turns SET feedback = (SELECT json_group_array(json_remove(f.value,"
            " '$.entity_id')) FROM json_each(turns.feedback) f) WHERE feedback IS NOT NULL"
        )

    async def strip() -> None:
        await store.connections.write(bare)

    world = await write_old_world(store, strip)

    def as_before_0015(conn) -> None:
        conn.execute("ALTER TABLE sessions DROP COLUMN title_version")
        # 0017 builds the vocabulary again (the index itself it rebuilds from the turns).
        conn.execute("DROP TABLE search_words")
        conn.execute("DROP TABLE search_stems")
        conn.execute("PRAGMA user_version = 14")

    await store.connections.write(as_before_0015)
    await store.close()

    upgraded = SqliteStore(path)
    await upgraded.open()
    try:
        version = await upgraded.connections.read(
            lambda conn: conn.execute("PRAGMA user_version").fetchone()
        )
        assert version == (max(v for v, _ in migrate.scripts()),)
        await check_upgraded(upgraded, world)
    finally:
        await upgraded.close()


async def test_mongo_upgrade_at_start_settles_external_people_once(
    mongo_database_url: str, mongo_database: str
) -> None:
    def started() -> MongoStore:
        return MongoStore(connect(mongo_database_url), mongo_database, redact=redact_details)

    store = started()
    await store.open()
    db = store._connection.database

    async def strip() -> None:
        turns = db["turns"]
        await turns.update_many({}, {"$unset": {"author_entity_id": ""}})
        async for doc in turns.find({"feedback.0": {"$exists": True}}):
            items = [{k: v for k, v in f.items() if k != "entity_id"} for f in doc["feedback"]]
            await turns.update_one({"_id": doc["_id"]}, {"$set": {"feedback": items}})

    try:
        # Every start runs the upgrades not yet recorded: this fresh database's is.
        assert await db[UPGRADES].find_one({"_id": PEOPLE_SETTLED}) is not None
        world = await write_old_world(store, strip)
        # A database the old code wrote has no record of the upgrade.
        await db[UPGRADES].delete_many({})
    finally:
        await store.close()

    upgraded = started()
    await upgraded.open()
    try:
        db = upgraded._connection.database
        record = await db[UPGRADES].find_one({"_id": PEOPLE_SETTLED})
        assert (record["sessions"], record["turns"], record["feedback"]) == (1, 1, 1)
        await check_upgraded(upgraded, world)
        # Recorded: it does not run again (it would find nothing left to rewrite anyway).
        await upgrades.run_pending(db)
        assert await db[UPGRADES].count_documents({}) == 1
    finally:
        await upgraded.close()
