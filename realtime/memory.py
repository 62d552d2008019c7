"""The in-process broker: enough for one instance, and the default."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ..domain.events import SessionEvent
from .notifications import Router
from .protocol import Receiver

log = structlog.get_logger("sessionhub.realtime")

Listener = Callable[[SessionEvent], None]


class InProcessBroker:
    def __init__(self, router: Router | None = None) -> None:
        self._listeners: list[Listener] = []
        self._router = router or Router(None)
        self._receiver: Receiver | None = None
        self._channels: set[str] = set()
        self._published = 0
        self._failures = 0

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Hear every domain event as published (tests and in-process observers)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def attach(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def subscribe(self, channel: str) -> None:
        if channel not in self._channels:
            self._channels.add(channel)
            if self._receiver is not None:
                self._receiver.subscribed(channel, False)

    def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def start(self) -> None:
        pass

    async def publish(self, event: SessionEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("broker.listener_failed", event=type(event).__name__)
        if self._receiver is None or not self._channels:
            return
        try:
            routed = await self._router.route(event)
            for channel, note in routed:
                if channel in self._channels:
                    self._published += 1
                    self._receiver.deliver(channel, note)
        except Exception:
            self._failures += 1
            log.exception("broker.publish_failed", event=type(event).__name__)

    async def close(self) -> None:
        self._listeners.clear()
        self._channels.clear()

    def problem(self) -> str | None:
        return None

    def stats(self) -> dict[str, int | float]:
        return {
            "broker_channels": len(self._channels),
            "broker_published": self._published,
            "broker_publish_failures": self._failures,
        }
