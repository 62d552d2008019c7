"""The backends the Store contract suite runs against. A new backend adds a param here
and must pass the whole suite unchanged.

A contract test that needs a capability some backend lacks carries the capability's
marker (`text_search`, `transactions`, `atlas_search`); the fixture skips it on that
backend with the reason, so the test itself is never forked per backend.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mongomock.store
import pytest
from mongomock_motor import AsyncMongoMockClient

from sessionhub.storage.mongo import MongoStore
from sessionhub.storage.mongo.driver import connect
from sessionhub.storage.protocol import Store
from sessionhub.storage.sqlite.store import SqliteStore

BACKENDS = ["sqlite-file", "sqlite-memory", "mongo-mock", "mongo-server"]

# What each backend lacks, and why (the skip reason).
SQLITE_LACKS = {"atlas_search": "Atlas Search is a MongoDB Atlas feature"}
MOCK_LACKS = {
    "transactions": "mongomock has no sessions or multi-document transactions",
    "atlas_search": "mongomock has no Atlas Search ($search needs mongot)",
}


def _skip_if_lacking(request: pytest.FixtureRequest, lacks: dict[str, str]) -> None:
    for capability, reason in lacks.items():
        if request.node.get_closest_marker(capability) is not None:
            pytest.skip(f"{request.param} cannot run this: {reason}")


class _Yielding:
    """mongomock-motor runs each operation to completion inside the awaiting coroutine, so
    concurrent coroutines never interleave. This wrapper yields to the event loop before
    every operation, so that concurrent appends interleave their reads and writes as
    separate round trips to a server would (it cannot interleave within one operation)."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getitem__(self, name: str) -> _Yielding:
        return _Yielding(self._target[name])

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return await attr(*args, **kwargs)

        return call


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
    elif request.param == "mongo-mock":
        _skip_if_lacking(request, MOCK_LACKS)
        # mongomock applies TTL indexes before every operation; a server's TTL monitor
        # runs in the background once a minute, so within a test it does nothing. Without
        # this, a session whose expires_at is already past by the wall clock would vanish
        # between its write and its read on the mock only.
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setattr(
            mongomock.store.CollectionStore, "_remove_expired_documents", lambda self: None
        )
        mock = MongoStore(_Yielding(AsyncMongoMockClient()), "contract")
        await mock.open()
        try:
            yield mock
        finally:
            await mock.close()
    else:
        async for server in _mongo_server(request):
            yield server


async def _mongo_server(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    url = os.environ.get("MONGODB_URL")
    if not url:
        pytest.skip("MONGODB_URL is not set: no MongoDB server to run the contract against")
    database = f"sessionhub_contract_{uuid.uuid4().hex[:12]}"
    client = connect(url)
    server = MongoStore(client, database)
    try:
        await server.open()
        lacks = {}
        if not server.transactions:
            lacks["transactions"] = "the server is a standalone, without transactions"
        if not os.environ.get("MONGODB_ATLAS_SEARCH"):
            lacks["atlas_search"] = "MONGODB_ATLAS_SEARCH is not set (no Atlas Search there)"
        _skip_if_lacking(request, lacks)
        yield server
    finally:
        await client.drop_database(database)
        await server.close()
