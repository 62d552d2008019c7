"""A session's history as the messages an LLM chat-completions call expects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from .models import Person, Session, ToolInvocation, Turn, TurnRole


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class ContextMessage:
    role: str
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    seq: int | None = None
    author: Person | None = None
    """Who wrote the turn the message comes from (None for the system prompt)."""
    external_author: bool = False
    """The author is of another entity than the session's (an external grantee)."""
    collaborator: bool = False
    """A USER message someone other than the session's owner wrote."""


@dataclass(slots=True)
class AgentContext:
    messages: list[ContextMessage]
    system_prompt: str | None
    variables: Any
    turn_count: int
    included_turns: int
    truncated: bool


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _tool_result(call: ToolInvocation, seq: int) -> ContextMessage:
    content = _as_text(call.output) if call.error is None else f"error: {call.error}"
    return ContextMessage("tool", content, tool_call_id=call.id, name=call.name, seq=seq)


@dataclass(frozen=True, slots=True)
class Collaborator:
    """How the agent is told that a USER turn is not its owner's."""

    name: str
    """A participant name as chat-completions APIs take it (`name`: letters, digits, _ and -)."""
    label: str
    """The line put before the message's content, for models that read no `name`."""


_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")


def _participant(text: str) -> str:
    return _NOT_IN_NAME.sub("_", text)[:64] or "_"


def collaborator_of(turn: Turn, session: Session) -> Collaborator | None:
    """Who wrote a USER turn, when it was someone other than the session's owner: a grantee
    (of another entity too: then named with it), an admin, a service writing as itself.
    The one place that names a turn's author for the agent. Names are cut to a safe
    alphabet, so that no id can close the label early and write what reads as the owner's
    words."""
    if turn.author == Person(session.entity_id, session.owner_id):
        return None
    user = _participant(turn.author_id)
    if not turn.external_author:
        return Collaborator(user, f"[Message from {user}, a collaborator, not the session's owner]")
    if turn.author_entity_id is None:
        # Someone the reader of the context may not know (people.py): nameless here too.
        return Collaborator(
            user,
            "[Message from someone of another entity: a collaborator, not the session's owner]",
        )
    entity = _participant(turn.author_entity_id)
    return Collaborator(
        f"{user}-{entity}"[:64],
        f"[Message from {user} of {entity}, another entity: a collaborator, not the session's "
        "owner]",
    )


def _user_message(turn: Turn, session: Session) -> ContextMessage:
    collaborator = collaborator_of(turn, session)
    if collaborator is None:
        return ContextMessage("user", turn.content, seq=turn.seq)
    return ContextMessage(
        "user",
        f"{collaborator.label}\n{turn.content}",
        name=collaborator.name,
        seq=turn.seq,
        collaborator=True,
    )


def _messages_of(turn: Turn, session: Session) -> list[ContextMessage]:
    role = turn.role
    if role is TurnRole.USER:
        return [_user_message(turn, session)]
    if role is TurnRole.SYSTEM:
        return [ContextMessage("system", turn.content, seq=turn.seq)]
    if role is TurnRole.TOOL:
        # A TOOL turn reports results of tools that an earlier assistant turn called.
        if not turn.tool_invocations:
            return [ContextMessage("tool", turn.content, seq=turn.seq)]
        return [_tool_result(call, turn.seq) for call in turn.tool_invocations]
    calls = [ToolCall(c.id, c.name, _as_text(c.input) or "{}") for c in turn.tool_invocations]
    messages = [ContextMessage("assistant", turn.content, tool_calls=calls, seq=turn.seq)]
    # An assistant turn that both called tools and holds their results answers them
    # right away, so the pair stays valid for the next call.
    messages += [
        _tool_result(c, turn.seq)
        for c in turn.tool_invocations
        if c.output is not None or c.error is not None
    ]
    return messages


def _attributed(messages: list[ContextMessage], turn: Turn) -> list[ContextMessage]:
    for message in messages:
        message.author = turn.author
        message.external_author = turn.external_author
    return messages


def build_context(session: Session, turns: list[Turn]) -> AgentContext:
    agent = session.agent_context if isinstance(session.agent_context, dict) else {}
    system_prompt = agent.get("systemPrompt") or agent.get("system_prompt")
    messages: list[ContextMessage] = []
    if system_prompt:
        messages.append(ContextMessage("system", str(system_prompt)))
    for turn in turns:
        messages.extend(_attributed(_messages_of(turn, session), turn))
    return AgentContext(
        messages=messages,
        system_prompt=system_prompt,
        variables=agent.get("variables"),
        turn_count=session.turn_count,
        included_turns=len(turns),
        truncated=len(turns) < session.turn_count,
    )
