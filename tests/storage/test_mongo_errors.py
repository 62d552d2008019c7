"""Driver errors leave the MongoDB store only as domain errors with codes. The errors are
real ones, met over the wire: a port nobody listens on, a mongoeco server stopped or
frozen under an open store, a command the server refuses, a closed client."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    InvalidOperation,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from sessionhub.domain.clock import new_id
from sessionhub.domain.errors import Conflict, StoreUnavailable
from sessionhub.domain.models import Session, TitleSource
from sessionhub.domain.redaction import redact_details
from sessionhub.storage.mongo import MongoStore
from sessionhub.storage.mongo.connection import server_has_transactions
from tests.support.mongo_wire import MongoEcoServer

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
TYPE_MISMATCH = 14


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


async def test_a_duplicate_session_id_is_a_conflict(mongo_store: MongoStore) -> None:
    first = session()
    await mongo_store.create_session(first, None, 10)
    with pytest.raises(Conflict) as raised:
        await mongo_store.create_session(session(first.id), None, 10)
    assert isinstance(raised.value.__cause__, DuplicateKeyError)
    assert raised.value.code == "CONFLICT"


@contextmanager
def frozen(server: MongoEcoServer) -> Iterator[None]:
    """The server's process stopped (SIGSTOP): connections stay open, nothing answers."""
    server.process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.process.send_signal(signal.SIGCONT)


async def opened_on(server: MongoEcoServer) -> MongoStore:
    # Short timeouts, and no retried read: the store meets the first failure itself.
    options = "&serverSelectionTimeoutMS=500&socketTimeoutMS=300&retryReads=false"
    store = MongoStore.from_url(server.url("errors") + options, "errors", redact=redact_details)
    await store.open()
    return store


async def test_a_server_gone_after_start_is_store_unavailable(
    own_mongoeco: MongoEcoServer,
) -> None:
    store = await opened_on(own_mongoeco)
    own_mongoeco.stop()
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.get_session("s")
        assert isinstance(raised.value.__cause__, AutoReconnect)
        assert "MongoDB could not be reached" in raised.value.message
    finally:
        await store.close()


async def test_a_server_that_stops_answering_is_store_unavailable(
    own_mongoeco: MongoEcoServer,
) -> None:
    store = await opened_on(own_mongoeco)
    try:
        with frozen(own_mongoeco), pytest.raises(StoreUnavailable) as raised:
            await store.get_session("s")
        assert isinstance(raised.value.__cause__, NetworkTimeout)
        assert "MongoDB could not be reached" in raised.value.message
    finally:
        await store.close()


async def test_a_command_the_server_refuses_is_store_unavailable(mongo_store: MongoStore) -> None:
    """The server answers with an error: here a stored title version that is not a number,
    which the rename's `$inc` cannot apply to (TypeMismatch, as MongoDB answers)."""
    first = session()
    await mongo_store.create_session(first, None, 10)
    await mongo_store._connection.sessions.update_one(
        {"_id": first.id}, {"$set": {"title_version": "one"}}
    )
    with pytest.raises(StoreUnavailable) as raised:
        await mongo_store.rename_session(first.id, "renamed", TitleSource.MANUAL, NOW)
    assert isinstance(raised.value.__cause__, OperationFailure)
    assert raised.value.__cause__.code == TYPE_MISMATCH
    assert "MongoDB could not complete the request" in raised.value.message


async def test_any_other_driver_error_is_store_unavailable(mongo_store: MongoStore) -> None:
    """A driver error that is neither the server's answer nor a lost connection: a client
    used after it was closed (InvalidOperation)."""
    await mongo_store.close()
    with pytest.raises(StoreUnavailable) as raised:
        await mongo_store.get_session("s")
    assert isinstance(raised.value.__cause__, InvalidOperation)
    assert "MongoDB could not complete the request" in raised.value.message


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
