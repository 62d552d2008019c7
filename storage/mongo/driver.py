"""Everything that names Motor lives in this module.

Motor is in maintenance mode upstream; PyMongo's own async API (`pymongo.AsyncMongoClient`)
replaces it. The rest of storage/mongo uses only what both share: collections, cursors
with `to_list`, `pymongo.errors`, `pymongo.ReturnDocument`, `pymongo.IndexModel`. Moving
off Motor means rewriting the three functions below (see docs/mongodb.md, "From Motor to
PyMongo's async API").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, TypeVar

from motor.motor_asyncio import AsyncIOMotorClient

T = TypeVar("T")

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


async def in_transaction(client: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(session)` in a multi-document transaction, retried as a whole on
    transient errors (write conflicts, elections) and on unknown commit results."""
    async with await client.start_session() as session:
        return await session.with_transaction(work)


def close(client: Any) -> None:
    client.close()
