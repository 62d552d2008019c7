"""The MongoDB store's transactional path, over the wire against mongoeco: which path the
setting chooses, and the bounded retries of a transaction that the server refuses
transiently. The server's own `failCommand` fail point (which MongoDB has with test
commands enabled, and mongoeco has always) makes it refuse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pymongo
import pytest

from sessionhub.domain.errors import StoreUnavailable
from sessionhub.domain.redaction import redact_details
from sessionhub.storage.mongo import MongoStore
from sessionhub.storage.mongo.driver import TRANSACTION_ATTEMPTS, connect
from tests.storage.test_store_contract import make_session, make_turn


async def store_on(url: str, transactions: bool | None) -> MongoStore:
    store = MongoStore(
        connect(url),
        url.split("/")[3].split("?")[0],
        redact=redact_details,
        transactions=transactions,
    )
    await store.open()
    return store


@pytest.fixture
async def transactional(mongo_database_url: str) -> AsyncIterator[MongoStore]:
    store = await store_on(mongo_database_url, transactions=True)
    yield store
    fail_commands(mongo_database_url, mode="off")
    await store.close()


def fail_commands(url: str, mode: Any, **data: Any) -> None:
    with pymongo.MongoClient(url) as client:
        client.admin.command(
            {"configureFailPoint": "failCommand", "mode": mode, **({"data": data} if data else {})}
        )


async def test_detect_asks_the_server_and_on_and_off_decide(mongo_database_url: str) -> None:
    # mongoeco answers `hello` as a standalone (no setName): detect finds no transactions.
    for setting, expected in ((None, False), (True, True), (False, False)):
        store = await store_on(mongo_database_url, transactions=setting)
        try:
            assert store.transactions is expected
        finally:
            await store.close()


async def test_a_transiently_refused_transaction_runs_again(
    transactional: MongoStore, mongo_database_url: str
) -> None:
    fail_commands(
        mongo_database_url,
        mode={"times": TRANSACTION_ATTEMPTS - 1},
        failCommands=["insert"],
        errorCode=112,
        errorLabels=["TransientTransactionError"],
    )
    session = make_session()
    await transactional.create_session(session, make_turn(session.id), 100)
    assert (await transactional.get_session(session.id)) is not None
    assert len(await transactional.list_turns(session.id, limit=10)) == 1


async def test_retries_stop_after_their_bound_and_leave_nothing(
    transactional: MongoStore, mongo_database_url: str
) -> None:
    fail_commands(
        mongo_database_url,
        mode={"times": TRANSACTION_ATTEMPTS},
        failCommands=["insert"],
        errorCode=112,
        errorLabels=["TransientTransactionError"],
    )
    session = make_session()
    with pytest.raises(StoreUnavailable):
        await transactional.create_session(session, make_turn(session.id), 100)
    fail_commands(mongo_database_url, mode="off")
    assert await transactional.get_session(session.id) is None
    assert await transactional.list_turns(session.id, limit=10) == []


async def test_an_unknown_commit_result_commits_again(
    transactional: MongoStore, mongo_database_url: str
) -> None:
    fail_commands(
        mongo_database_url,
        mode={"times": 2},
        failCommands=["commitTransaction"],
        errorCode=91,
        errorLabels=["UnknownTransactionCommitResult"],
    )
    session = make_session()
    await transactional.create_session(session, make_turn(session.id), 100)
    assert len(await transactional.list_turns(session.id, limit=10)) == 1
