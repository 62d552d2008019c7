"""What makes a title malformed, in any language: shared by the title tests and
bench/multilingual.py."""

from __future__ import annotations

import unicodedata

from sessionhub.domain.title_language import PAIRS
from sessionhub.domain.titles import MAX_TITLE_CHARS
from sessionhub.domain.words import words

UNSPACED_LANGUAGES = ("zh", "ja", "th")
_CLOSING = {closing for opening, closing in PAIRS if closing not in "?!"}


def title_problems(title: str, user_texts: list[str], language: str) -> list[str]:
    """What is wrong with `title` for a conversation whose user wrote `user_texts` in
    `language`: too long, ending in punctuation, paired marks unpaired, words the user
    did not write, or (Chinese, Japanese, Thai) not an exact piece of what they wrote."""
    problems = []
    if not 0 < len(title) <= MAX_TITLE_CHARS:
        problems.append(f"{len(title)} characters")
    last = title[-1:]
    if last and unicodedata.category(last).startswith("P") and last not in _CLOSING:
        problems.append(f"ends with {last!r}")
    for opening, closing in PAIRS:
        if opening != closing and title.count(opening) != title.count(closing):
            problems.append(f"{opening}{closing} unpaired")
    said = set(words(" ".join(user_texts)))
    if language in UNSPACED_LANGUAGES:
        if not any(title in text for text in user_texts):
            problems.append("not a piece of what the user wrote")
    elif not set(words(title)) <= said:
        problems.append(f"words the user did not write: {sorted(set(words(title)) - said)}")
    return problems
