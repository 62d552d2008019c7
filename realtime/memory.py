"""The in-process broker: enough for one instance, and the default."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ..domain.events import SessionEvent

log = structlog.get_logger(__name__)

Listener = Callable[[SessionEvent], None]


class InProcessBroker:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def publish(self, event: SessionEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("broker.listener_failed", event=type(event).__name__)

    async def close(self) -> None:
        self._listeners.clear()
