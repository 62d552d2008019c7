"""Titles a session gets without anyone naming it."""

from __future__ import annotations

import re

MAX_TITLE_CHARS = 60
_TRAILING = re.compile(r"[\s.,;:!?…\-–—]+$")


def opening_words(text: str, max_chars: int = MAX_TITLE_CHARS) -> str:
    """The first words of a message, cut at a word boundary, without trailing punctuation."""
    words = text.split()
    title = ""
    for word in words:
        candidate = f"{title} {word}" if title else word
        if len(candidate) > max_chars:
            break
        title = candidate
    if not title and words:
        title = words[0][:max_chars]
    return _TRAILING.sub("", title)
