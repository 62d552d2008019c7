"""Fixtures of the live-updates tests: a real redis-server per test on a free port (started
and stopped by the test itself, tests/support/redis_server.py), and the app run in process
with a WebSocket client (tests/support/live.py, shared with the WebSocket transport's
tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live import chat_apps_file, live, live_factory
from tests.support.redis_server import RedisServer

__all__ = ["chat_apps_file", "live", "live_factory"]  # fixtures of this folder's tests


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
