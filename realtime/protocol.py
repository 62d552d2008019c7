"""The brokers' side of the `Broker` port (domain/ports.py): channels that carry committed
session events to whoever follows them, on one instance or many."""

from __future__ import annotations

from typing import Protocol

from ..domain.ports import Broker
from .notifications import Notification


class Receiver(Protocol):
    """The instance's fan-out (realtime.hub.Hub): hears the channels it subscribed to."""

    def deliver(self, channel: str, note: Notification) -> None:
        """A notification arrived on `channel`. Called on the event loop; must not block."""

    def subscribed(self, channel: str, resumed: bool) -> None:
        """The broker now delivers `channel`. `resumed` is True after the broker lost its
        connection and got it back: notifications may have been missed meanwhile."""


class ChannelBroker(Broker, Protocol):
    """A broker with channels: the in-process one (realtime.memory) and Redis pub/sub
    (realtime.redis). An instance subscribes to a channel once, whatever the number of
    its subscribers, and fans out itself."""

    def attach(self, receiver: Receiver) -> None: ...

    def subscribe(self, channel: str) -> None:
        """Start delivering `channel`; returns at once (the broker confirms through
        Receiver.subscribed)."""

    def unsubscribe(self, channel: str) -> None: ...

    async def start(self) -> None: ...

    def stats(self) -> dict[str, int | float]: ...

    def problem(self) -> str | None:
        """What keeps the broker from carrying events now (for readiness), or None."""
