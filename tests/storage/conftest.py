"""The backends the Store contract suite runs against. A new backend adds a param here
and must pass the whole suite unchanged.

A contract test that needs a capability some backend lacks carries the capability's
marker (`text_search`, `transactions`, `atlas_search`, `fresh_search`); the fixture skips
it on that backend with the reason, so the test itself is never forked per backend.

Where each backend runs:
- sqlite-file, sqlite-memory: always.
- mongo: always, over the wire through the real Motor client, searching on stored stems:
  against the MongoDB that MONGODB_URL names when it is set, else against mongoeco (the
  `mongoeco` fixture, tests/support/mongo_wire.py), which speaks MongoDB's wire protocol
  but is not MongoDB. mongoeco answers `hello` as a standalone, so there the store writes
  step by step and the `transactions` tests are skipped; they need a replica set or mongos.
- mongo-transactions: the same server with SESSIONHUB_MONGO_TRANSACTIONS=on, so that
  every multi-collection write runs in a transaction (mongoeco accepts them).
- mongo-atlas: when MONGODB_URL names a server with Atlas Search (Atlas, or mongot
  beside MongoDB 8 such as the mongodb-atlas-local image) and MONGODB_ATLAS_SEARCH=1 says
  so. The store searches through `$search`; the fixture applies the search indexes of
  atlas_search_index.json to each test database and waits until they answer.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sessionhub.domain.ports import Store
from sessionhub.domain.query import SearchRequest, SessionHit
from sessionhub.domain.redaction import redact_details
from sessionhub.storage.mongo import MongoStore
from sessionhub.storage.mongo.atlas import (
    SESSIONS_INDEX,
    TURNS_INDEX,
    ensure_search_indexes,
    search_index_specs,
)
from sessionhub.storage.mongo.driver import connect
from sessionhub.storage.mongo.indexes import SESSIONS, TURNS
from sessionhub.storage.sqlite.store import SqliteStore

BACKENDS = ["sqlite-file", "sqlite-memory", "mongo", "mongo-transactions", "mongo-atlas"]

# What each backend lacks, and why (the skip reason).
SQLITE_LACKS = {"atlas_search": "Atlas Search is a MongoDB Atlas feature"}
STEMS_LACKS = {"atlas_search": "this backend searches on stored stems; mongo-atlas runs $search"}
ATLAS_LACKS = {
    "fresh_search": "Atlas Search indexes follow writes asynchronously (mongot tails the"
    " change stream), so a write is not searchable as soon as it returns",
}
# How long the fixture waits for mongot: search indexes to build, and writes to show.
ATLAS_INDEX_TIMEOUT = 180.0
ATLAS_CATCH_UP_TIMEOUT = 30.0
BARRIER_ENTITY = "__index_barrier__"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fresh_search: needs a write to be searchable as soon as it returns"
        " (Atlas Search is eventually consistent)",
    )


def _skip_if_lacking(request: pytest.FixtureRequest, lacks: dict[str, str]) -> None:
    for capability, reason in lacks.items():
        if request.node.get_closest_marker(capability) is not None:
            pytest.skip(f"{request.param} cannot run this: {reason}")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param.startswith("sqlite"):
        _skip_if_lacking(request, SQLITE_LACKS)
        if request.param == "sqlite-file":
            backend: Store = SqliteStore(str(tmp_path / "contract.db"), readers=2)
        else:
            backend = SqliteStore(":memory:")
        await backend.open()
        try:
            yield backend
        finally:
            await backend.close()
    else:
        async for server in _mongo_server(
            request,
            atlas=request.param == "mongo-atlas",
            transactions=True if request.param == "mongo-transactions" else None,
        ):
            yield server


async def _mongo_server(
    request: pytest.FixtureRequest, *, atlas: bool, transactions: bool | None = None
) -> AsyncIterator[Store]:
    url = os.environ.get("MONGODB_URL")
    if atlas and not url:
        pytest.skip("MONGODB_URL is not set: no MongoDB server with Atlas Search to run against")
    if atlas and os.environ.get("MONGODB_ATLAS_SEARCH") != "1":
        pytest.skip(
            "MONGODB_ATLAS_SEARCH=1 is not set: the server at MONGODB_URL is not known to"
            " have Atlas Search (mongot)"
        )
    database = f"sessionhub_contract_{uuid.uuid4().hex[:12]}"
    standalone = "the MongoDB at MONGODB_URL is a standalone, without transactions"
    unlabelled = {}
    if not url:
        url = request.getfixturevalue("mongoeco").url(database)
        standalone = "mongoeco answers `hello` as a standalone (no setName): no transactions"
        unlabelled["labelled_conflicts"] = (
            "mongoeco answers a write conflict between transactions without code 112 or the"
            " TransientTransactionError label, so nothing can retry it"
        )
    client = connect(url)
    server = MongoStore(
        client,
        database,
        redact=redact_details,
        search_mode="atlas" if atlas else "stems",
        transactions=transactions,
    )
    try:
        await server.open()
        lacks = dict(ATLAS_LACKS if atlas else STEMS_LACKS)
        if not server.transactions:
            lacks["transactions"] = standalone
        else:
            lacks.update(unlabelled)
        _skip_if_lacking(request, lacks)
        if atlas and request.node.get_closest_marker("text_search") is not None:
            db = client[database]
            await ensure_search_indexes(db)
            await _until_queryable(db)
            yield _AfterIndexCatchesUp(server, db)
        else:
            yield server
    finally:
        await client.drop_database(database)
        await server.close()


async def _until_queryable(db: Any) -> None:
    """Wait until every search index of atlas_search_index.json answers queries."""
    deadline = asyncio.get_running_loop().time() + ATLAS_INDEX_TIMEOUT
    for spec in search_index_specs():
        while True:
            found = await db[spec["collection"]].list_search_indexes(spec["name"]).to_list(None)
            if found and found[0].get("queryable"):
                break
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(
                    f"search index {spec['name']!r} not queryable after {ATLAS_INDEX_TIMEOUT}s"
                )
            await asyncio.sleep(1)


class _AfterIndexCatchesUp:
    """The Atlas store, whose `search` first waits until the search indexes hold every
    write made before it: it writes a marker turn and a marker session (in an entity no
    test searches) and polls `$search` until both are found. mongot applies the change
    stream in order, so once the markers are searchable the earlier writes are too.
    Without it every search contract test would race the index; what this hides, that a
    write is not searchable at once, is the `fresh_search` capability that mongo-atlas
    lacks."""

    def __init__(self, store: MongoStore, db: Any) -> None:
        self._store = store
        self._db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def search(self, request: SearchRequest) -> list[SessionHit]:
        await self._catch_up()
        return await self._store.search(request)

    async def _catch_up(self) -> None:
        word = "barrier" + uuid.uuid4().hex
        marker = {"_id": word, "entity_id": BARRIER_ENTITY, "owner_id": BARRIER_ENTITY}
        await self._db[TURNS].insert_one({**marker, "session_id": word, "content": word})
        await self._db[SESSIONS].insert_one({**marker, "title": word})
        deadline = asyncio.get_running_loop().time() + ATLAS_CATCH_UP_TIMEOUT
        for collection, index, path in (
            (TURNS, TURNS_INDEX, "content"),
            (SESSIONS, SESSIONS_INDEX, "title"),
        ):
            probe = [
                {"$search": {"index": index, "text": {"query": word, "path": path}}},
                {"$limit": 1},
            ]
            while not await self._db[collection].aggregate(probe).to_list(None):
                if asyncio.get_running_loop().time() > deadline:
                    pytest.fail(f"{index!r} did not show a write after {ATLAS_CATCH_UP_TIMEOUT}s")
                await asyncio.sleep(0.2)
