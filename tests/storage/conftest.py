"""The backends the Store contract suite runs against. A new backend adds a param here
and must pass the whole suite unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sessionhub.storage.protocol import Store
from sessionhub.storage.sqlite.store import SqliteStore


@pytest.fixture(params=["sqlite-file", "sqlite-memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite-file":
        backend: Store = SqliteStore(str(tmp_path / "contract.db"), readers=2)
    else:
        backend = SqliteStore(":memory:")
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
