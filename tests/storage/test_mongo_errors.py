"""Driver errors leave the MongoDB store only as domain errors with codes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from sessionhub.domain.clock import new_id
from sessionhub.domain.errors import Conflict, StoreUnavailable
from sessionhub.domain.models import Session, TitleSource
from sessionhub.domain.redaction import redact_details
from sessionhub.storage.mongo import MongoStore
from sessionhub.storage.mongo.connection import server_has_transactions

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def session(session_id: str | None = None) -> Session:
    return Session(
        session_id or new_id(), "acme", "support", "alice", "t", TitleSource.MANUAL, NOW, NOW, NOW
    )


async def test_a_refused_connection_is_store_unavailable() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    store = MongoStore.from_url(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200",
        "x",
        redact=redact_details,
    )
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.check_ready()
        assert isinstance(raised.value.__cause__, ServerSelectionTimeoutError)
        assert raised.value.code == "SERVICE_UNAVAILABLE"
        assert "MongoDB could not be reached" in raised.value.message
        with pytest.raises(StoreUnavailable):
            await store.open()
    finally:
        await store.close()


async def test_a_duplicate_session_id_is_a_conflict() -> None:
    store = MongoStore(AsyncMongoMockClient(), "errors", redact=redact_details)
    await store.open()
    first = session()
    await store.create_session(first, None, 10)
    with pytest.raises(Conflict) as raised:
        await store.create_session(session(first.id), None, 10)
    assert isinstance(raised.value.__cause__, DuplicateKeyError)
    assert raised.value.code == "CONFLICT"


@pytest.mark.parametrize(
    "error",
    [
        ServerSelectionTimeoutError("no primary"),
        NetworkTimeout("timed out"),
        AutoReconnect("connection reset"),
        ConnectionFailure("closed"),
        OperationFailure("not authorized", code=13),
        PyMongoError("anything else"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_driver_failures_are_store_unavailable(
    error: PyMongoError, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MongoStore(AsyncMongoMockClient(), "errors", redact=redact_details)
    await store.open()

    async def failing(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(store._connection.sessions, "find_one", failing)
    with pytest.raises(StoreUnavailable) as raised:
        await store.get_session("s")
    assert raised.value.__cause__ is error


async def test_transactions_follow_what_the_server_says() -> None:
    class Admin:
        def __init__(self, hello: dict) -> None:
            self.hello = hello

        async def command(self, name: str) -> dict:
            assert name == "hello"
            return self.hello

    class Client:
        def __init__(self, hello: dict) -> None:
            self.admin = Admin(hello)

    assert await server_has_transactions(Client({"setName": "rs0"}))
    assert await server_has_transactions(Client({"msg": "isdbgrid"}))
    assert not await server_has_transactions(Client({"isWritablePrimary": True}))
