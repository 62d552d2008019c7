"""Reads the chat apps file (TOML) into validated ChatApp objects."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..domain.languages import STEMMERS
from ..domain.models import JSON, ChatApp, SessionSettings, SessionTemplate, StarterTurn, TurnRole
from .errors import SettingsError


class _SettingsModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto_generate_titles: bool = True
    allow_sharing: bool = False
    allow_external_sharing: bool = False
    allow_pinning: bool = True
    max_session_history: int = Field(500, ge=1, le=100_000)
    retention_days: int = Field(90, ge=1, le=36_500)
    agent_turns_from_collaborators: bool = False
    languages: list[str] = Field(default_factory=list, max_length=len(STEMMERS))

    @field_validator("languages")
    @classmethod
    def _stemmed(cls, value: list[str]) -> list[str]:
        unknown = [code for code in value if code not in STEMMERS]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: not a language search can stem; use ISO 639-1 codes"
                f" among {', '.join(sorted(STEMMERS))}"
            )
        return list(dict.fromkeys(value))


class _AgentContextModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = Field(None, max_length=100_000)
    variables: dict[str, JSON] | None = None


class _StarterTurnModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["USER", "ASSISTANT", "SYSTEM"]
    content: str = Field(min_length=1, max_length=100_000)


class _TemplateModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    agent_context: _AgentContextModel = _AgentContextModel()
    starter_turns: list[_StarterTurnModel] = Field(default_factory=list, max_length=100)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        return _slug(value)

    def to_domain(self) -> SessionTemplate:
        return SessionTemplate(
            id=self.id,
            name=self.name,
            description=self.description,
            system_prompt=self.agent_context.system_prompt,
            variables=self.agent_context.variables,
            starter_turns=tuple(
                StarterTurn(TurnRole(t.role), t.content) for t in self.starter_turns
            ),
        )


def _slug(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value):
        raise ValueError("use lowercase letters, digits, '-' and '_' (at most 64)")
    return value


class _ChatAppModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    settings: _SettingsModel = _SettingsModel()
    templates: list[_TemplateModel] = Field(default_factory=list)

    @field_validator("templates")
    @classmethod
    def _distinct_templates(cls, value: list[_TemplateModel]) -> list[_TemplateModel]:
        ids = [t.id for t in value]
        if len(set(ids)) != len(ids):
            raise ValueError("template ids must be distinct within a chat app")
        return value

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        return _slug(value)


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat_apps: list[_ChatAppModel] = Field(min_length=1)


def load_chat_apps(path: Path) -> list[ChatApp]:
    try:
        raw = tomllib.loads(path.read_text())
        parsed = _FileModel.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"SESSIONHUB_CHAT_APPS_FILE: cannot read {path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"SESSIONHUB_CHAT_APPS_FILE: {path} is invalid: {problems}") from exc
    ids = [app.id for app in parsed.chat_apps]
    if len(set(ids)) != len(ids):
        raise SettingsError(f"SESSIONHUB_CHAT_APPS_FILE: {path} repeats a chat app id.")
    return [
        ChatApp(
            id=app.id,
            name=app.name,
            description=app.description,
            settings=SessionSettings(
                **app.settings.model_dump(exclude={"languages"}),
                languages=tuple(app.settings.languages),
            ),
            templates=tuple(t.to_domain() for t in app.templates),
        )
        for app in parsed.chat_apps
    ]
