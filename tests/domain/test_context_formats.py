"""AgentContext.request: what OpenAI Chat Completions and Anthropic Messages take, checked
with the request types of the official `openai` and `anthropic` packages, and a window that
the APIs accept wherever it is cut."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import (
    DocumentBlockParam,
    ImageBlockParam,
    TextBlockParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)
from anthropic.types.assistant_message_param import AssistantMessageParam
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from anthropic.types.user_message_param import UserMessageParam
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartImageParam,
    ChatCompletionContentPartTextParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.chat.chat_completion_content_part_param import File
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from pydantic import TypeAdapter

from sessionhub.domain.context import build_context
from sessionhub.domain.context_formats import ContextFormat, request_fields
from sessionhub.domain.models import ToolInvocation, ToolStatus, Turn, TurnRole
from tests.domain.test_context import session, turn

PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
OPENAI_MESSAGES = {
    "system": ChatCompletionSystemMessageParam,
    "user": ChatCompletionUserMessageParam,
    "assistant": ChatCompletionAssistantMessageParam,
    "tool": ChatCompletionToolMessageParam,
}
OPENAI_PARTS = {
    "text": ChatCompletionContentPartTextParam,
    "image_url": ChatCompletionContentPartImageParam,
    "file": File,
}
ANTHROPIC_BLOCKS = {
    "text": TextBlockParam,
    "image": ImageBlockParam,
    "document": DocumentBlockParam,
    "tool_use": ToolUseBlockParam,
    "tool_result": ToolResultBlockParam,
}


def conforms(typed: Any, value: dict[str, Any]) -> None:
    """`value` is what the SDK's TypedDict `typed` describes: pydantic validates its
    values, and its keys are the type's own (required ones present, no others)."""
    TypeAdapter(typed).validate_python(value)
    keys = set(value)
    assert typed.__required_keys__ <= keys, (typed.__name__, value)
    assert keys <= typed.__required_keys__ | typed.__optional_keys__, (typed.__name__, value)


def openai_accepts(body: dict[str, Any]) -> dict[str, Any]:
    conforms(CompletionCreateParamsNonStreaming, body)
    for message in body["messages"]:
        conforms(OPENAI_MESSAGES[message["role"]], message)
        if isinstance(message.get("content"), list):
            for part in message["content"]:
                conforms(OPENAI_PARTS[part["type"]], part)
        for call in message.get("tool_calls", []):
            conforms(ChatCompletionMessageFunctionToolCallParam, call)
    return body


def anthropic_accepts(body: dict[str, Any]) -> dict[str, Any]:
    conforms(MessageCreateParamsNonStreaming, body)
    for message in body["messages"]:
        conforms(
            {"user": UserMessageParam, "assistant": AssistantMessageParam}[message["role"]], message
        )
        for block in message["content"]:
            conforms(ANTHROPIC_BLOCKS[block["type"]], block)
    return body


def openai_body(turns: list[Turn], count: int | None = None, **agent: Any) -> dict[str, Any]:
    ctx = build_context(session(count or len(turns), agent or None), turns)
    return openai_accepts({"model": "gpt-test", **request_fields(ctx, ContextFormat.OPENAI_CHAT)})


def anthropic_body(turns: list[Turn], count: int | None = None, **agent: Any) -> dict[str, Any]:
    ctx = build_context(session(count or len(turns), agent or None), turns)
    fields = request_fields(ctx, ContextFormat.ANTHROPIC_MESSAGES)
    return anthropic_accepts({"model": "claude-test", "max_tokens": 1024, **fields})


def with_parts(t: Turn, parts: list[dict[str, Any]]) -> Turn:
    t.parts = parts
    return t


WEATHER = ToolInvocation("c1", "weather", {"city": "Oslo"}, {"temp": -3}, ToolStatus.SUCCEEDED)
FAILED = ToolInvocation("c2", "news", "latest", None, ToolStatus.FAILED, error="timeout")
RUNNING = ToolInvocation("c3", "search", {"q": "x"}, None, ToolStatus.RUNNING)


def conversation() -> list[Turn]:
    return [
        with_parts(
            turn(1, TurnRole.USER, "What is in this picture, and the weather?"),
            [
                {"type": "text"},
                {"type": "image", "url": "https://example.invalid/cat.png"},
                {"type": "image", "data": PIXEL, "mimeType": "image/png"},
                {
                    "type": "file",
                    "data": "JVBERi0=",
                    "mimeType": "application/pdf",
                    "filename": "a.pdf",
                },
            ],
        ),
        turn(2, TurnRole.ASSISTANT, "", [WEATHER, FAILED]),
        turn(3, TurnRole.ASSISTANT, "A cat; -3°C in Oslo. Searching more.", [RUNNING]),
        turn(4, TurnRole.USER, "Thanks, and tomorrow?", author="bob"),
    ]


def test_openai_chat_completions_takes_the_whole_conversation() -> None:
    body = openai_body(conversation(), systemPrompt="Be brief")
    messages = body["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
    ]
    user = messages[1]["content"]
    assert user[0] == {"type": "text", "text": "What is in this picture, and the weather?"}
    assert user[1] == {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}}
    assert user[2]["image_url"]["url"] == f"data:image/png;base64,{PIXEL}"
    assert user[3] == {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    }
    calls = messages[2]["tool_calls"]
    assert calls[0] == {
        "id": "c1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
    }
    assert calls[1]["function"]["arguments"] == '{"input":"latest"}'  # not an object: wrapped
    assert messages[2]["content"] is None
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": '{"temp":-3}'}
    # The running search has no result: its call is left out, the text stays.
    assert "tool_calls" not in messages[5]
    assert messages[6]["name"] == "bob"
    assert not any("seq" in m or "toolCalls" in m for m in messages)


def test_anthropic_messages_takes_the_whole_conversation() -> None:
    body = anthropic_body(conversation(), systemPrompt="Be brief")
    assert body["system"] == "Be brief"
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user"]  # alternating
    first = body["messages"][0]["content"]
    assert [b["type"] for b in first] == ["text", "image", "image", "document"]
    assert first[1]["source"] == {"type": "url", "url": "https://example.invalid/cat.png"}
    assert first[2]["source"] == {"type": "base64", "media_type": "image/png", "data": PIXEL}
    uses = body["messages"][1]["content"]
    assert uses == [
        {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "c2", "name": "news", "input": {"input": "latest"}},
    ]
    results = body["messages"][2]["content"]
    assert results == [
        {"type": "tool_result", "tool_use_id": "c1", "content": '{"temp":-3}'},
        {"type": "tool_result", "tool_use_id": "c2", "content": "error: timeout", "is_error": True},
    ]


@pytest.mark.parametrize("cut", range(0, 6))
def test_a_window_cut_anywhere_is_accepted_by_both_apis(cut: int) -> None:
    call = ToolInvocation("c9", "lookup", {"id": 1}, None, ToolStatus.RUNNING)
    answer = ToolInvocation("c9", "lookup", None, "found", ToolStatus.SUCCEEDED)
    turns = [
        turn(1, TurnRole.USER, "Find order 1"),
        turn(2, TurnRole.ASSISTANT, "Looking it up", [call]),
        turn(3, TurnRole.TOOL, "", [answer]),
        turn(4, TurnRole.ASSISTANT, "Found it."),
        turn(5, TurnRole.USER, "Thanks"),
        turn(6, TurnRole.ASSISTANT, "You're welcome."),
    ]
    window = turns[cut:]
    messages = openai_body(window, count=6)["messages"]
    assert messages[0]["role"] != "tool", "a window never starts with an orphan result"
    called = {c["id"] for m in messages for c in m.get("tool_calls", [])}
    answered = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
    assert sorted(answered) == sorted(called)
    anthropic_body(window, count=6)


def test_a_tool_turn_that_names_no_call_answers_the_waiting_one() -> None:
    call = ToolInvocation("c5", "lookup", {"id": 1}, None, ToolStatus.RUNNING)
    turns = [
        turn(1, TurnRole.USER, "Find it"),
        turn(2, TurnRole.ASSISTANT, "", [call]),
        turn(3, TurnRole.TOOL, "order 1: shipped"),
        turn(4, TurnRole.TOOL, "a result nobody asked for"),
    ]
    messages = openai_body(turns)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[2] == {"role": "tool", "tool_call_id": "c5", "content": "order 1: shipped"}
    ctx = build_context(session(4), turns)
    assert ctx.left_out == 1
