"""Characters a document format cannot carry: replaced by visible stand-ins and counted,
so that an export never fails on them and the document says what was replaced.

Turns hold whatever their writers sent, and anyone allowed to append a turn can put in
characters that some formats refuse: XML 1.0 (DOCX) has no place for most control
characters, U+FFFE/U+FFFF or lone surrogates; UTF-8 (Markdown, JSON) none for lone
surrogates; a PDF shows only the characters its fonts have.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

# What is not text in a document meant for people: control characters other than tab,
# newline and carriage return (XML 1.0 forbids the C0 ones; all of them are invisible, and
# some drive terminals), surrogates (no UTF-8 for them) and the noncharacters U+FFFE and
# U+FFFF (XML 1.0 forbids them). Written as escapes, which say what the character was.
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"
# The note lists this many kinds of character, then only counts the rest.
NOTE_KINDS = 20


def escape(character: str) -> str:
    """`\\x1b`, `\\ufffe`, `\\ud800`: the character as a Python string literal writes it."""
    return character.encode("unicode_escape", "backslashreplace").decode("ascii")


def code_point(character: str) -> str:
    return f"U+{ord(character):04X}"


class Replacements:
    """What one document replaced: each character with its count and its stand-in."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._stand_ins: dict[str, str] = {}

    def escape_not_text(self, text: str) -> str:
        """`text` with every character of NOT_TEXT written as its escape."""
        if NOT_TEXT.search(text) is None:
            return text
        return NOT_TEXT.sub(lambda match: self._count(match.group(), escape(match.group())), text)

    def replace_missing(self, text: str, available: frozenset[str]) -> str:
        """`text` with every character not in `available` (newlines aside) replaced by
        U+FFFD; for a font that lacks glyphs, which are not the text's fault."""
        missing = set(text).difference(available)
        missing.discard("\n")
        if not missing:
            return text
        table = {}
        for character in missing:
            self._counts[character] += text.count(character)
            self._stand_ins[character] = REPLACEMENT_CHARACTER
            table[ord(character)] = REPLACEMENT_CHARACTER
        return text.translate(table)

    def replace_surrogates(self, value: Any) -> Any:
        """A JSON value (dicts, lists, strings, numbers) with U+FFFD for each lone
        surrogate in its strings and keys; what UTF-8, hence JSON, cannot hold."""
        replace = self.replace_surrogates
        if isinstance(value, str):
            if SURROGATE.search(value) is None:
                return value
            return SURROGATE.sub(lambda m: self._count(m.group(), REPLACEMENT_CHARACTER), value)
        if isinstance(value, dict):
            return {replace(k): replace(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [replace(v) for v in value]
        return value

    def _count(self, character: str, written: str) -> str:
        self._counts[character] += 1
        self._stand_ins[character] = written
        return written

    def as_list(self) -> list[dict[str, Any]]:
        """For JSON: [{"codePoint": "U+D800", "count": 2, "writtenAs": "\\ufffd"}, ...]."""
        return [
            {"codePoint": code_point(c), "count": n, "writtenAs": self._stand_ins[c]}
            for c, n in self._ordered()
        ]

    def note(self, what: str) -> str | None:
        """A sentence for the top of the document, or None when nothing was replaced."""
        if not self._counts:
            return None
        kinds = self._ordered()
        listed = [f"{code_point(c)} ×{n} by {self._stand_ins[c]}" for c, n in kinds[:NOTE_KINDS]]
        rest = len(kinds) - NOTE_KINDS
        if rest > 0:
            listed.append(f"{rest} more kinds of character")
        total = sum(self._counts.values())
        plural = "character" if total == 1 else "characters"
        return f"Note: {total:,} {plural} that {what} cannot show were replaced: " + (
            "; ".join(listed) + "."
        )

    def _ordered(self) -> list[tuple[str, int]]:
        return sorted(self._counts.items(), key=lambda item: ord(item[0]))


def font_characters(code_points: Iterable[int]) -> frozenset[str]:
    """The characters of a font's character map, as `replace_missing` takes them."""
    return frozenset(map(chr, code_points))
