"""The session services wired as the composition root wires them, for domain tests."""

from __future__ import annotations

from dataclasses import dataclass

from sessionhub.domain.access import SessionAccess
from sessionhub.domain.chat_apps import ChatApps
from sessionhub.domain.clock import Clock
from sessionhub.domain.collaborators import SessionCollaborators
from sessionhub.domain.conversation import ConversationService
from sessionhub.domain.ports import Broker, Store
from sessionhub.domain.sessions import SessionService
from sessionhub.domain.titles import TitleScheduler
from sessionhub.domain.validation import Limits


@dataclass(frozen=True)
class SessionServices:
    access: SessionAccess
    sessions: SessionService
    conversation: ConversationService


def session_services(
    store: Store,
    chat_apps: ChatApps,
    broker: Broker,
    clock: Clock,
    limits: Limits | None = None,
    titles: TitleScheduler | None = None,
) -> SessionServices:
    collaborators = SessionCollaborators.wire(store, chat_apps, broker, clock, limits)
    return SessionServices(
        collaborators.access,
        SessionService(collaborators),
        ConversationService(collaborators, titles),
    )
