"""What the services acting on sessions work with, wired once by the composition root:
the store and broker ports, the chat apps, the clock, the access loader and the limits."""

from __future__ import annotations

from dataclasses import dataclass

from . import validation as check
from .access import SessionAccess
from .chat_apps import ChatApps
from .clock import Clock
from .ports import Broker, Store


@dataclass(frozen=True, slots=True)
class SessionCollaborators:
    store: Store
    chat_apps: ChatApps
    broker: Broker
    clock: Clock
    access: SessionAccess
    limits: check.Limits

    @classmethod
    def wire(
        cls,
        store: Store,
        chat_apps: ChatApps,
        broker: Broker,
        clock: Clock,
        limits: check.Limits | None = None,
    ) -> SessionCollaborators:
        limits = limits or check.Limits()
        access = SessionAccess(store, chat_apps, clock, limits)
        return cls(store, chat_apps, broker, clock, access, limits)


class ActsOnSessions:
    """Base of the session services: each collaborator as a private attribute."""

    def __init__(self, collaborators: SessionCollaborators) -> None:
        self._store = collaborators.store
        self._chat_apps = collaborators.chat_apps
        self._broker = collaborators.broker
        self._clock = collaborators.clock
        self._access = collaborators.access
        self._limits = collaborators.limits
