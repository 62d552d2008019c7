"""The chat apps this deployment serves, loaded once from the config file."""

from __future__ import annotations

from typing import Protocol

from .languages import Languages
from .models import ChatApp


class ChatApps(Protocol):
    def get(self, chat_app_id: str) -> ChatApp | None: ...

    def all(self) -> list[ChatApp]: ...


class ChatAppRegistry:
    def __init__(self, chat_apps: list[ChatApp]) -> None:
        self._by_id = {app.id: app for app in chat_apps}

    def get(self, chat_app_id: str) -> ChatApp | None:
        return self._by_id.get(chat_app_id)

    def all(self) -> list[ChatApp]:
        return list(self._by_id.values())

    def languages(self) -> Languages:
        """The languages of the chat apps that name theirs."""
        return {app.id: app.settings.languages for app in self.all() if app.settings.languages}
