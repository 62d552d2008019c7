"""Everything that names Motor lives in this module.

Motor is in maintenance mode upstream; PyMongo's own async API (`pymongo.AsyncMongoClient`)
replaces it. The rest of storage/mongo uses only what both share: collections, cursors
with `to_list`, `pymongo.errors`, `pymongo.ReturnDocument`, `pymongo.IndexModel`. Moving
off Motor means rewriting `connect`, `in_transaction` and `close` (see docs/mongodb.md,
"From Motor to PyMongo's async API").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, TypeVar

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.errors import PyMongoError

T = TypeVar("T")

# How many times a transaction runs (and its commit is tried) before its error stands.
TRANSACTION_ATTEMPTS = 5
TRANSIENT = "TransientTransactionError"
UNKNOWN_COMMIT = "UnknownTransactionCommitResult"

# How long an operation waits for a usable server before it fails as StoreUnavailable,
# unless the URL sets serverSelectionTimeoutMS itself.
DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 5000


def connect(url: str, *, server_selection_timeout_ms: int | None = None) -> Any:
    """A client for `url`. It connects lazily: nothing is sent before the first command."""
    options: dict[str, Any] = {"tz_aware": True, "tzinfo": UTC, "appname": "sessionhub"}
    if "serverselectiontimeoutms" not in url.lower():
        options["serverSelectionTimeoutMS"] = (
            server_selection_timeout_ms or DEFAULT_SERVER_SELECTION_TIMEOUT_MS
        )
    return AsyncIOMotorClient(url, **options)


async def in_transaction(
    client: Any, work: Callable[[Any], Awaitable[T]], attempts: int = TRANSACTION_ATTEMPTS
) -> T:
    """Run `work(session)` in a multi-document transaction. A transient error (a write
    conflict, an election) runs the whole unit again, and an unknown commit result commits
    again, each at most `attempts` times in all; past that the last error is raised.
    (PyMongo's `with_transaction` retries for up to two minutes instead, which would hold
    a request that long.)"""
    async with await client.start_session() as session:
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            session.start_transaction()
            try:
                result = await work(session)
            except BaseException as exc:
                if session.in_transaction:
                    await session.abort_transaction()
                if _labelled(exc, TRANSIENT) and not last:
                    continue
                raise
            if await _committed(session, attempts, may_run_again=not last):
                return result
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _committed(session: Any, attempts: int, *, may_run_again: bool) -> bool:
    """Commit, again on an unknown result. False when the commit failed transiently (the
    transaction is gone) and the unit may run again."""
    for attempt in range(1, attempts + 1):
        try:
            await session.commit_transaction()
            return True
        except PyMongoError as exc:
            if _labelled(exc, UNKNOWN_COMMIT) and attempt < attempts:
                continue
            if _labelled(exc, TRANSIENT) and may_run_again:
                return False
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _labelled(exc: BaseException, label: str) -> bool:
    return isinstance(exc, PyMongoError) and exc.has_error_label(label)


def close(client: Any) -> None:
    client.close()
