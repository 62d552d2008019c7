"""A session's history as the messages an LLM chat-completions call expects.

Every tool call in the messages has its result, and every tool result follows its call:
the APIs refuse anything else. A window of the newest turns can cut a pair in two, and a
tool may still be running; the unmatched part is left out (`repair`), never invented."""

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


@dataclass(frozen=True, slots=True)
class MediaPart:
    """An image or a file a turn carries beside its text (from the turn's `parts`): a URL,
    or base64 `data` with its media type; or a file the model's provider already holds."""

    kind: str  # "image" or "file"
    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    filename: str | None = None
    file_id: str | None = None


@dataclass(slots=True)
class ContextMessage:
    role: str
    content: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    media: list[MediaPart] = field(default_factory=list)
    tool_call_id: str | None = None
    is_error: bool = False
    """A tool result that reports the tool's failure."""
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
    left_out: int = 0
    """Messages left out so that calls and results pair up (see `repair`)."""


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _arguments(value: Any) -> str:
    """A tool's input as the JSON object the APIs take as arguments: an input that is not
    an object is wrapped as {"input": value}."""
    if value is None:
        return "{}"
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return orjson.dumps({"input": value}).decode()
    if not isinstance(value, dict):
        value = {"input": value}
    return orjson.dumps(value).decode()


_IMAGE_TYPES = {"image", "image_url", "input_image"}
_FILE_TYPES = {"file", "document", "input_file"}


def media_of(parts: Any) -> list[MediaPart]:
    """The images and files among a turn's parts, in the shapes clients send them:
    {type: image, url | data + mimeType}, OpenAI's {type: image_url, image_url: {url}},
    {type: file, data | url | fileId, mimeType, filename}. Other parts (text) are in the
    turn's content already."""
    if not isinstance(parts, list):
        return []
    media = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in _IMAGE_TYPES:
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image or part.get("url")
            media.append(_media("image", url, part.get("data"), part.get("mimeType"), None, None))
        elif kind in _FILE_TYPES:
            file = part.get("file")
            nested: dict[str, Any] = file if isinstance(file, dict) else part
            media.append(
                _media(
                    "file",
                    nested.get("url"),
                    nested.get("data") or nested.get("file_data"),
                    nested.get("mimeType") or nested.get("media_type"),
                    nested.get("filename"),
                    nested.get("fileId") or nested.get("file_id"),
                )
            )
    return [m for m in media if m.url or m.data or m.file_id]


def _media(
    kind: str, url: Any, data: Any, media_type: Any, filename: Any, file_id: Any
) -> MediaPart:
    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    return MediaPart(kind, text(url), text(data), text(media_type), text(filename), text(file_id))


def _tool_result(call: ToolInvocation, seq: int) -> ContextMessage:
    failed = call.error is not None
    content = f"error: {call.error}" if failed else _as_text(call.output)
    return ContextMessage(
        "tool", content, tool_call_id=call.id, is_error=failed, name=call.name, seq=seq
    )


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
    media = media_of(turn.parts)
    if collaborator is None:
        return ContextMessage("user", turn.content, media=media, seq=turn.seq)
    return ContextMessage(
        "user",
        f"{collaborator.label}\n{turn.content}",
        media=media,
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
    calls = [ToolCall(c.id, c.name, _arguments(c.input)) for c in turn.tool_invocations]
    media = media_of(turn.parts)
    messages = [
        ContextMessage("assistant", turn.content, tool_calls=calls, media=media, seq=turn.seq)
    ]
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
    repaired = repair(messages)
    return AgentContext(
        messages=repaired,
        system_prompt=system_prompt,
        variables=agent.get("variables"),
        turn_count=session.turn_count,
        included_turns=len(turns),
        truncated=len(turns) < session.turn_count,
        left_out=len(messages) - len(repaired),
    )


def repair(messages: list[ContextMessage]) -> list[ContextMessage]:
    """The messages with every tool call answered and every result after its call:
    - a result whose call is not before it (the window began after the call) is left out;
    - a TOOL turn that names no call answers the oldest call still waiting, or is left out;
    - a call no result answers (still running, or answered after the window) is taken
      off its assistant message, which is left out when nothing else remains in it;
    - results are moved up to follow their assistant message directly, as the APIs ask."""
    waiting: dict[str, tuple[ContextMessage, ToolCall]] = {}  # call id -> its message, call
    results: dict[int, list[ContextMessage]] = {}  # id(assistant message) -> results
    answered: set[str] = set()
    kept: list[ContextMessage] = []
    for message in messages:
        if message.role != "tool":
            kept.append(message)
            for call in message.tool_calls:
                waiting[call.id] = (message, call)
            continue
        if message.tool_call_id is None:
            pending = next((c for c in waiting if c not in answered), None)
            if pending is None:
                continue
            message.tool_call_id = pending
            message.name = waiting[pending][1].name
        if message.tool_call_id not in waiting or message.tool_call_id in answered:
            continue
        caller, _ = waiting[message.tool_call_id]
        answered.add(message.tool_call_id)
        results.setdefault(id(caller), []).append(message)
    out: list[ContextMessage] = []
    for message in kept:
        if message.tool_calls:
            message.tool_calls = [c for c in message.tool_calls if c.id in answered]
            if not message.tool_calls and not message.content and not message.media:
                continue
        out.append(message)
        out.extend(results.get(id(message), []))
    return out
