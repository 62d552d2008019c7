"""An agent context as the request of an LLM API: the fields a client sends as they are,
beside its model name. OpenAI Chat Completions takes `messages`; Anthropic Messages takes
`system` and `messages`, with tool calls and results as content blocks."""

from __future__ import annotations

import enum
from typing import Any

import orjson

from .context import AgentContext, ContextMessage, MediaPart


class ContextFormat(enum.StrEnum):
    OPENAI_CHAT = "OPENAI_CHAT"
    ANTHROPIC_MESSAGES = "ANTHROPIC_MESSAGES"


def request_fields(context: AgentContext, format: ContextFormat) -> dict[str, Any]:
    if format is ContextFormat.ANTHROPIC_MESSAGES:
        return anthropic_messages(context)
    return {"messages": [openai_message(m) for m in context.messages]}


# OpenAI Chat Completions


def openai_message(message: ContextMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        out["content"] = message.content
        return out
    if message.media and message.role == "user":
        out["content"] = _openai_parts(message)
    else:
        out["content"] = message.content
    if message.name and message.role in ("user", "system"):
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
        if not message.content:
            out["content"] = None
    return out


def _openai_parts(message: ContextMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "text": message.content})
    for media in message.media:
        if media.kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _url_of(media)}})
        else:
            file: dict[str, Any] = {}
            if media.file_id:
                file["file_id"] = media.file_id
            else:
                file["file_data"] = _url_of(media)
            if media.filename:
                file["filename"] = media.filename
            parts.append({"type": "file", "file": file})
    return parts


def _url_of(media: MediaPart) -> str:
    if media.data:
        return f"data:{media.media_type or 'application/octet-stream'};base64,{media.data}"
    return media.url or ""


# Anthropic Messages


def anthropic_messages(context: AgentContext) -> dict[str, Any]:
    """System messages go to `system` (the API has no system role); each message's blocks
    join the previous message when both have the same role (tool results are the user's),
    so that roles alternate as the API asks."""
    system = [m.content for m in context.messages if m.role == "system" and m.content]
    messages: list[dict[str, Any]] = []
    for message in context.messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _anthropic_blocks(message)
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = "\n\n".join(system)
    return out


def _anthropic_blocks(message: ContextMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": message.tool_call_id,
            "content": message.content,
        }
        if message.is_error:
            block["is_error"] = True
        return [block]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    blocks += [_anthropic_media(m) for m in message.media]
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": orjson.loads(c.arguments)}
        for c in message.tool_calls
    ]
    return blocks


def _anthropic_media(media: MediaPart) -> dict[str, Any]:
    kind = "image" if media.kind == "image" else "document"
    if media.file_id:
        return {"type": kind, "source": {"type": "file", "file_id": media.file_id}}
    if media.data:
        default = "image/png" if kind == "image" else "application/pdf"
        source = {"type": "base64", "media_type": media.media_type or default, "data": media.data}
        return {"type": kind, "source": source}
    return {"type": kind, "source": {"type": "url", "url": media.url}}
