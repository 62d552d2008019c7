"""Who builds the MongoDB indexes: the server at start (the default), or the operator
(SESSIONHUB_MONGO_CREATE_INDEXES=false), over the wire against mongoeco."""

from __future__ import annotations

import pymongo
import pytest

from sessionhub.server.app import build_store
from sessionhub.server.settings import load_settings
from sessionhub.storage.mongo.indexes import INDEXES
from tests.storage.test_store_contract import make_session, make_turn


def index_names(url: str, database: str) -> set[str]:
    with pymongo.MongoClient(url) as client:
        db = client[database]
        return {
            name
            for collection in db.list_collection_names()
            for name in db[collection].index_information()
        }


@pytest.mark.parametrize("create", [True, False])
async def test_the_setting_decides_whether_the_server_builds_its_indexes(
    monkeypatch: pytest.MonkeyPatch, mongo_database_url: str, mongo_database: str, create: bool
) -> None:
    monkeypatch.setenv("SESSIONHUB_DATABASE_URL", mongo_database_url)
    monkeypatch.setenv("SESSIONHUB_MONGO_CREATE_INDEXES", str(create).lower())
    store = build_store(load_settings())
    await store.open()
    try:
        session = make_session()
        await store.create_session(session, None, 100)
        await store.append_turn(make_turn(session.id), 100)
        await store.append_turn(make_turn(session.id), 100)
        assert [t.seq for t in await store.list_turns(session.id, limit=10)] == [1, 2]
    finally:
        await store.close()
    built = index_names(mongo_database_url, mongo_database)
    ours = {name for _, name, _, _ in INDEXES}
    if create:
        assert ours <= built
    else:
        assert not ours & built, f"built although the operator builds them: {ours & built}"
