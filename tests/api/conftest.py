"""The API tests run on both backends: SQLite, and MongoDB over the wire (mongoeco). A
test about something only one backend has carries `sqlite_only("why")`."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): runs on SQLite only; the reason says why"
    )


@pytest.fixture(params=["sqlite", "mongo"])
def backend(request: pytest.FixtureRequest) -> str:
    marker = request.node.get_closest_marker("sqlite_only")
    if request.param == "mongo" and marker is not None:
        pytest.skip(f"SQLite only: {marker.args[0]}")
    return request.param
