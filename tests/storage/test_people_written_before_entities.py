"""Data written before people carried their entity: bare user ids, which read as people of
the session's entity. The upgrade (SQLite's migration 0015, MongoDB's upgrade step of the
same name at start) rewrites those the stored trail settles as an external grantee's: a
user id with an EXTERNAL INTERACT share of one other entity, live when they wrote, and no
way in for a person of the session's entity with that id. Ambiguous ones stay people of
the session's entity, as documented in the migration and the README.

The old data is written through the store's own API as the old code wrote it (everyone
with the session's entity, which both stores keep as a bare id, exactly the old form);
the SQLite file is then taken back to schema version 13, and the MongoDB database loses
its record of the upgrade, so that opening the store again upgrades it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from mongomock_motor import AsyncMongoMockClient

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
from sessionhub.domain.redaction import redact_details
from sessionhub.domain.titles import opening_words
from sessionhub.storage.mongo import MongoStore, upgrades
from sessionhub.storage.mongo.upgrades import PEOPLE_SETTLED, UPGRADES
from sessionhub.storage.protocol import Store
from sessionhub.storage.sqlite import store as sqlite_store
from sessionhub.storage.sqlite.store import SqliteStore

from .test_store_contract import T0, make_session, make_share, make_turn, session_audit


def at(minutes: int):
    return T0 + timedelta(minutes=minutes)


@dataclass
class OldWorld:
    """alice's acme sessions, each with an EXTERNAL INTERACT share to a globex user and an
    old turn by that user id:

    - settled: globex's gina wrote (and rated alice's turn) while her share was live; acme
      also has a gina (she owns a session), an ordinary user who had no way in;
    - both: bob also has a USER share (acme's bob could have written);
    - early: carol's turn is older than her share (it cannot be the grantee's);
    - admin: acme's dave is an admin (he erased a user), who writes in every session."""

    settled: str
    both: str
    early: str
    admin: str
    gina_turn: str
    opening_turn: str


async def write_old_world(store: Store) -> OldWorld:
    sessions = {
        name: make_session(app="knowledge") for name in ("settled", "both", "early", "admin")
    }
    grantee = {"settled": "gina", "both": "bob", "early": "carol", "admin": "dave"}
    turns: dict[str, str] = {}
    for name, session in sessions.items():
        user = grantee[name]
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
        opening, _ = await store.append_turn(
            make_turn(session.id, content="Planning the roadmap", at=at(1)), 10
        )
        # As the old code stored every person: a bare user id, read as acme's.
        theirs, _ = await store.append_turn(
            make_turn(session.id, author=user, content=f"{user} notes", at=at(2)), 10
        )
        turns[name] = theirs.id
        if name == "settled":
            turns["opening"] = opening.id
            await store.add_feedback(
                opening.id,
                Feedback(user, FeedbackKind.THUMBS_UP, "gina's thumbs", at(3), entity_id="acme"),
            )
    await store.create_share(
        make_share(sessions["both"].id, GranteeKind.USER, "acme", "bob", mode=ShareMode.INTERACT),
        session_audit("share.created", sessions["both"].id),
    )
    await store.create_session(make_session(owner="gina"), None, 10)
    await store.append_audit(
        AuditEvent(new_id(), "acme", "dave", "user.erased", "user:zed", T0, {"sessions": 1})
    )
    return OldWorld(
        settled=sessions["settled"].id,
        both=sessions["both"].id,
        early=sessions["early"].id,
        admin=sessions["admin"].id,
        gina_turn=turns["settled"],
        opening_turn=turns["opening"],
    )


async def authors(store: Store, session_id: str) -> list[Person]:
    return [t.author for t in await store.list_turns(session_id, limit=10)]


async def check_upgraded(store: Store, w: OldWorld) -> None:
    # Settled: globex's gina, in her turn, her feedback and the session's people.
    settled = await store.get_session(w.settled)
    assert settled.participants == ["alice"]
    assert settled.external_participants == [Person("globex", "gina")]
    assert await authors(store, w.settled) == [Person("acme", "alice"), Person("globex", "gina")]
    opening = await store.get_turn(w.opening_turn)
    assert [f.given_by for f in opening.feedback] == [Person("globex", "gina")]
    # Ambiguous: as before, people of the session's entity.
    for session_id, user in ((w.both, "bob"), (w.early, "carol"), (w.admin, "dave")):
        session = await store.get_session(session_id)
        assert (session.participants, session.external_participants) == (["alice", user], [])
        assert await authors(store, session_id) == [Person("acme", "alice"), Person("acme", user)]

    # acme's erasure of gina no longer reaches globex's gina's words ...
    erased, _ = await store.erase_contributions(
        "acme", "gina", T0, 10, redact_details, opening_words
    )
    assert (erased.authored_turns, erased.feedback) == (0, 0)
    assert (await store.get_turn(w.gina_turn)).content == "gina notes"
    # ... her own entity's does.
    erased, _ = await store.erase_contributions(
        "globex", "gina", T0, 10, redact_details, opening_words
    )
    assert (erased.authored_turns, erased.feedback, erased.participations) == (1, 1, 1)
    assert (await store.get_turn(w.gina_turn)).author_id == ERASED_AUTHOR
    assert (await store.get_turn(w.opening_turn)).feedback == []
    assert (await store.get_session(w.settled)).external_participants == []
    # An ambiguous turn goes with the session's entity's person of that id, as documented.
    erased, _ = await store.erase_contributions(
        "acme", "bob", T0, 10, redact_details, opening_words
    )
    assert erased.authored_turns == 1


async def test_sqlite_upgrade_settles_external_people_written_before_0014(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    store = SqliteStore(path)
    await store.open()
    world = await write_old_world(store)

    def as_before_0014(conn) -> None:
        conn.execute("DROP INDEX sessions_with_external_participants")
        conn.execute("ALTER TABLE sessions DROP COLUMN external_participants")
        conn.execute("ALTER TABLE turns DROP COLUMN author_entity_id")
        conn.execute("ALTER TABLE sessions DROP COLUMN title_version")
        conn.execute("PRAGMA user_version = 13")

    await store._write(as_before_0014)
    await store.close()

    upgraded = SqliteStore(path)
    await upgraded.open()
    try:
        version = await upgraded._read(lambda conn: conn.execute("PRAGMA user_version").fetchone())
        assert version == (max(v for v, _ in sqlite_store._migrations()),)
        await check_upgraded(upgraded, world)
    finally:
        await upgraded.close()


async def test_mongo_upgrade_at_start_settles_external_people_once() -> None:
    client = AsyncMongoMockClient()
    store = MongoStore(client, "old", redact=redact_details)
    await store.open()
    try:
        # Every start runs the upgrades not yet recorded: this fresh database's is.
        assert await store._db[UPGRADES].find_one({"_id": PEOPLE_SETTLED}) is not None
        world = await write_old_world(store)
        # A database the old code wrote has no record of the upgrade; what `open` runs
        # (mongomock cannot build the unique indexes again over existing documents, so the
        # store is not opened a second time here).
        await store._db[UPGRADES].delete_many({})
        await upgrades.run_pending(store._db)
        record = await store._db[UPGRADES].find_one({"_id": PEOPLE_SETTLED})
        assert (record["sessions"], record["turns"], record["feedback"]) == (1, 1, 1)
        await check_upgraded(store, world)
        # Recorded: it does not run again (it would find nothing left to rewrite anyway).
        await upgrades.run_pending(store._db)
        assert await store._db[UPGRADES].count_documents({}) == 1
    finally:
        await store.close()
