"""A session's history as the messages an LLM chat-completions call expects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from .models import Session, ToolInvocation, Turn, TurnRole


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
    author_id: str | None = None
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


@dataclass(frozen=True, slots=True)
class Collaborator:
    """How the agent is told that a USER turn is not its owner's."""

    name: str
    """A participant name as chat-completions APIs take it (`name`: letters, digits, _ and -)."""
    label: str
    """The line put before the message's content, for models that read no `name`."""


_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")


def collaborator_of(turn: Turn, session: Session) -> Collaborator | None:
    """Who wrote a USER turn, when it was someone other than the session's owner: a grantee,
    an admin, a service writing as itself. The one place that names a turn's author for
    the agent. The name is cut to a safe alphabet, so that no author id can close the
    label early and write what reads as the owner's words."""
    if turn.author_id == session.owner_id:
        return None
    name = _NOT_IN_NAME.sub("_", turn.author_id)[:64] or "_"
    return Collaborator(name, f"[Message from {name}, a collaborator, not the session's owner]")


def _tool_result(call: ToolInvocation, turn: Turn) -> ContextMessage:
    content = _as_text(call.output) if call.error is None else f"error: {call.error}"
    return ContextMessage(
        "tool",
        content,
        tool_call_id=call.id,
        name=call.name,
        seq=turn.seq,
        author_id=turn.author_id,
    )


def _user_message(turn: Turn, session: Session) -> ContextMessage:
    collaborator = collaborator_of(turn, session)
    if collaborator is None:
        return ContextMessage("user", turn.content, seq=turn.seq, author_id=turn.author_id)
    return ContextMessage(
        "user",
        f"{collaborator.label}\n{turn.content}",
        name=collaborator.name,
        seq=turn.seq,
        author_id=turn.author_id,
        collaborator=True,
    )


def _messages_of(turn: Turn, session: Session) -> list[ContextMessage]:
    role = turn.role
    author = turn.author_id
    if role is TurnRole.USER:
        return [_user_message(turn, session)]
    if role is TurnRole.SYSTEM:
        return [ContextMessage("system", turn.content, seq=turn.seq, author_id=author)]
    if role is TurnRole.TOOL:
        # A TOOL turn reports results of tools that an earlier assistant turn called.
        if not turn.tool_invocations:
            return [ContextMessage("tool", turn.content, seq=turn.seq, author_id=author)]
        return [_tool_result(call, turn) for call in turn.tool_invocations]
    calls = [ToolCall(c.id, c.name, _as_text(c.input) or "{}") for c in turn.tool_invocations]
    messages = [
        ContextMessage("assistant", turn.content, tool_calls=calls, seq=turn.seq, author_id=author)
    ]
    # An assistant turn that both called tools and holds their results answers them
    # right away, so the pair stays valid for the next call.
    messages += [
        _tool_result(c, turn)
        for c in turn.tool_invocations
        if c.output is not None or c.error is not None
    ]
    return messages


def build_context(session: Session, turns: list[Turn]) -> AgentContext:
    agent = session.agent_context if isinstance(session.agent_context, dict) else {}
    system_prompt = agent.get("systemPrompt") or agent.get("system_prompt")
    messages: list[ContextMessage] = []
    if system_prompt:
        messages.append(ContextMessage("system", str(system_prompt)))
    for turn in turns:
        messages.extend(_messages_of(turn, session))
    return AgentContext(
        messages=messages,
        system_prompt=system_prompt,
        variables=agent.get("variables"),
        turn_count=session.turn_count,
        included_turns=len(turns),
        truncated=len(turns) < session.turn_count,
    )
