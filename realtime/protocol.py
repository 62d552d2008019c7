"""Carries committed session events to whoever follows them, on one instance or many."""

from __future__ import annotations

from typing import Protocol

from ..domain.events import SessionEvent


class Broker(Protocol):
    async def publish(self, event: SessionEvent) -> None:
        """Deliver after commit; a failure to deliver never undoes the write."""

    async def close(self) -> None: ...
