"""The stores for the domain tests that must hold on both backends (races between two
writers, whose interleavings differ): a SQLite file, and MongoDB over the wire (mongoeco,
a standalone, so the store writes step by step there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionhub.domain.ports import Store
from sessionhub.storage.sqlite.store import SqliteStore


@pytest.fixture
async def sqlite_file_store(tmp_path: Path) -> AsyncIterator[Store]:
    """A SqliteStore on a file of its own with two readers, opened, closed after the test."""
    store = SqliteStore(str(tmp_path / "store.db"), readers=2)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["sqlite-file", "mongo"])
def any_store(request: pytest.FixtureRequest) -> Store:
    """Each backend in turn: `sqlite_file_store`, then `mongo_store` (tests/conftest.py)."""
    return request.getfixturevalue(
        "mongo_store" if request.param == "mongo" else "sqlite_file_store"
    )
