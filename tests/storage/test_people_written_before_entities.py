"""Data written before people carried their entity: bare user ids, which both backends read
as people of the session's entity (the only thing the old code could mean for owners and
internal users; an external grantee's old turn cannot be told apart and reads the same).
SQLite gets there by migration 0014, MongoDB by reading absent fields that way. These
tests build the old rows and documents by hand: the store no longer writes them."""

from __future__ import annotations

from pathlib import Path

from mongomock_motor import AsyncMongoMockClient

from sessionhub.domain.models import (
    ERASED_AUTHOR,
    Feedback,
    FeedbackKind,
    Person,
    TurnRole,
)
from sessionhub.domain.redaction import redact_details
from sessionhub.domain.titles import opening_words
from sessionhub.storage.mongo import MongoStore
from sessionhub.storage.protocol import Store
from sessionhub.storage.sqlite import store as sqlite_store
from sessionhub.storage.sqlite.store import SqliteStore

from .test_store_contract import T0, make_session, make_turn

OLD_FEEDBACK = '[{"user_id": "bob", "kind": "THUMBS_UP", "comment": "old", "at": 1}]'


async def check_old_session_reads_as_its_entitys_people(store: Store, session_id: str) -> None:
    session = await store.get_session(session_id)
    assert session.participants == ["alice", "gina"]
    assert session.external_participants == []
    opening, by_gina = await store.list_turns(session_id, limit=10)
    assert by_gina.author == Person("acme", "gina") and not by_gina.external_author
    (old,) = opening.feedback
    assert old.given_by == Person("acme", "bob")
    # The same person rating again replaces the old item; globex's bob is someone else.
    await store.add_feedback(
        opening.id, Feedback("bob", FeedbackKind.THUMBS_UP, "again", T0, entity_id="acme")
    )
    rated = await store.add_feedback(
        opening.id, Feedback("bob", FeedbackKind.THUMBS_UP, "theirs", T0, entity_id="globex")
    )
    assert [(f.given_by, f.comment) for f in rated.feedback] == [
        (Person("acme", "bob"), "again"),
        (Person("globex", "bob"), "theirs"),
    ]
    # Erasure finds the old rows by person: globex's gina has nothing here, acme's has.
    erased, _ = await store.erase_contributions(
        "globex", "gina", T0, 10, redact_details, opening_words
    )
    assert erased.is_empty()
    erased, _ = await store.erase_contributions(
        "acme", "gina", T0, 10, redact_details, opening_words
    )
    assert (erased.authored_turns, erased.participations) == (1, 1)
    assert (await store.get_turn(by_gina.id)).author_id == ERASED_AUTHOR


async def test_sqlite_rows_from_before_migration_0014(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    store = SqliteStore(path)
    await store.open()
    session = make_session(app="knowledge")
    await store.create_session(session, None, 10)

    def as_before_0014(conn) -> None:
        conn.execute("DROP INDEX sessions_with_external_participants")
        conn.execute("ALTER TABLE sessions DROP COLUMN external_participants")
        conn.execute("ALTER TABLE turns DROP COLUMN author_entity_id")
        conn.execute("PRAGMA user_version = 13")
        # Two turns as the old code stored them: bare author ids, feedback by bare id.
        for seq, author, feedback in ((1, "alice", OLD_FEEDBACK), (2, "gina", None)):
            conn.execute(
                "INSERT INTO turns (id, session_id, seq, role, author_id, content, feedback,"
                " created_at) VALUES (?, ?, ?, 'USER', ?, 'words', ?, 1)",
                (f"old-{seq}", session.id, seq, author, feedback),
            )
        conn.execute(
            'UPDATE sessions SET turn_count = 2, participants = \'["alice", "gina"]\' WHERE id = ?',
            (session.id,),
        )

    await store._write(as_before_0014)
    await store.close()

    upgraded = SqliteStore(path)
    await upgraded.open()
    try:
        version = await upgraded._read(lambda conn: conn.execute("PRAGMA user_version").fetchone())
        assert version == (max(v for v, _ in sqlite_store._migrations()),)
        await check_old_session_reads_as_its_entitys_people(upgraded, session.id)
    finally:
        await upgraded.close()


async def test_mongo_documents_from_before_people_carried_their_entity() -> None:
    store = MongoStore(AsyncMongoMockClient(), "old")
    await store.open()
    session = make_session(app="knowledge")
    await store.create_session(session, make_turn(session.id, content="words"), 10)
    await store.append_turn(make_turn(session.id, author="gina"), 10)
    # Documents as the old code wrote them: no entity beside any person.
    await store._turns.update_one(
        {"session_id": session.id, "seq": 1},
        {"$set": {"feedback": [{"user_id": "bob", "kind": "THUMBS_UP", "comment": "old"}]}},
    )
    await store._turns.update_many({}, {"$unset": {"author_entity_id": ""}})
    await store._sessions.update_many({}, {"$unset": {"external_participants": ""}})
    for doc in await store._turns.find({}).to_list(None):
        assert "author_entity_id" not in doc and doc["role"] == TurnRole.USER.value
        for item in doc["feedback"]:
            item.setdefault("at_us", 1)
            assert "entity_id" not in item
        await store._turns.replace_one({"_id": doc["_id"]}, doc)
    try:
        await check_old_session_reads_as_its_entitys_people(store, session.id)
    finally:
        await store.close()
