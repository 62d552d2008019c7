"""Fixtures of the server's tests: the app run in process with a WebSocket client
(tests/support/live.py) for the WebSocket transport's tests."""

from __future__ import annotations

from tests.support.live import chat_apps_file, live, live_factory

__all__ = ["chat_apps_file", "live", "live_factory"]  # fixtures of this folder's tests
