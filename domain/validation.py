"""Limits on what a caller may store, checked before anything is written."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Limits:
    max_content_chars: int = 100_000
    max_title_chars: int = 200
    max_json_bytes: int = 256 * 1024
    max_tags: int = 50
    max_tag_chars: int = 64
    max_tool_invocations: int = 100
    max_comment_chars: int = 4_000
    max_id_chars: int = 200
    max_description_chars: int = 4_000
    max_starter_turns: int = 100
    max_templates_per_chat_app: int = 200


def content(text: str, limits: Limits, *, required: bool, what: str = "content") -> str:
    if "\x00" in text:
        raise InvalidInput(f"The {what} contains a NUL character.")
    if required and not text.strip():
        raise InvalidInput(f"The {what} is empty; send some text.")
    if len(text) > limits.max_content_chars:
        raise InvalidInput(
            f"The {what} has {len(text):,} characters; the limit is {limits.max_content_chars:,}."
        )
    return text


def title(text: str, limits: Limits) -> str:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InvalidInput("The title is empty; give the session a name.")
    if len(cleaned) > limits.max_title_chars:
        raise InvalidInput(
            f"The title has {len(cleaned):,} characters; the limit is {limits.max_title_chars}."
        )
    return cleaned


def name(text: str, limits: Limits, what: str) -> str:
    """A name people pick from a list: spacing collapsed, not empty, as long as a title."""
    cleaned = " ".join(text.split())
    if not cleaned:
        raise InvalidInput(f"The {what} is empty.")
    if "\x00" in cleaned:
        raise InvalidInput(f"The {what} contains a NUL character.")
    if len(cleaned) > limits.max_title_chars:
        raise InvalidInput(
            f"The {what} has {len(cleaned):,} characters; the limit is {limits.max_title_chars}."
        )
    return cleaned


def json_value(value: Any, limits: Limits, what: str) -> Any:
    if value is None:
        return None
    try:
        size = len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(f"The {what} is not valid JSON: {exc}.") from exc
    if size > limits.max_json_bytes:
        raise InvalidInput(
            f"The {what} is {size:,} bytes of JSON; the limit is {limits.max_json_bytes:,}."
        )
    return value


def tag(value: str, limits: Limits) -> str:
    """One tag as stored: trimmed, lower case, not empty, not too long."""
    cleaned = value.strip().lower()
    if not cleaned:
        raise InvalidInput("A tag is empty.")
    if len(cleaned) > limits.max_tag_chars:
        raise InvalidInput(f"The tag {cleaned[:20]!r}… is longer than {limits.max_tag_chars}.")
    return cleaned


def tags(values: list[str], limits: Limits) -> list[str]:
    cleaned = distinct_tags(values, limits)
    if len(cleaned) > limits.max_tags:
        raise InvalidInput(f"A session holds at most {limits.max_tags} tags.")
    return cleaned


def distinct_tags(values: list[str], limits: Limits) -> list[str]:
    """The tags normalised, each once, in order; no limit on how many."""
    return list(dict.fromkeys(tag(value, limits) for value in values))


def identifier(value: str, limits: Limits, what: str) -> str:
    if not value or not value.strip() or len(value) > limits.max_id_chars:
        raise InvalidInput(f"The {what} {value[:40]!r} is not a valid id.")
    return value


def optional_text(value: str | None, max_chars: int, what: str) -> str | None:
    if value is None:
        return None
    if len(value) > max_chars:
        raise InvalidInput(f"The {what} has {len(value):,} characters; the limit is {max_chars:,}.")
    return value


def number(value: float | None, what: str, *, low: float, high: float) -> float | None:
    if value is None:
        return None
    if math.isnan(value) or not low <= value <= high:
        raise InvalidInput(f"The {what} must be between {low} and {high}.")
    return value


def count(value: int, what: str) -> int:
    if value < 0:
        raise InvalidInput(f"The {what} cannot be negative.")
    return value
