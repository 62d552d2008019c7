"""What a word is, in every script a chat is written in: the tokens search indexes and
looks for, each with where it lies in the text and the folded form both sides compare.

- Words of alphabets and abugidas are runs of letters, digits and the marks that belong
  to them: a Devanagari, Bengali or Tamil vowel sign stays inside its word.
- Chinese, Japanese and Korean runs, and Thai, Lao, Khmer and Myanmar ones (written
  without spaces), become overlapping pairs of characters, as Lucene's CJK analyzer does:
  a word of two or more characters inside a sentence is the run of its pairs, in order.
- Emoji (with their modifiers and joiners) are tokens; so are `C++`, `C#`, `F#`: a word
  followed by `++` or `#` keeps them.
- Folding makes case, accents, Arabic and Hebrew vowel points, ß/ss, ё/е and the Turkish
  dotted and dotless i alike; an Indic vowel sign is a letter, not an accent, and stays.

Both backends index these tokens (storage/sqlite/search, storage/mongo/search.py) and
`domain/query.py` parses queries with them, so a query is cut exactly as the text was.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from typing import NamedTuple

import regex

# Scripts written without spaces between words, cut into overlapping pairs.
_PAIRED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}ー々"
_TOKEN = regex.compile(
    rf"(?P<paired>[{_PAIRED}][{_PAIRED}\p{{M}}]*)"
    r"|(?P<emoji>(?=\p{Extended_Pictographic}|\p{Regional_Indicator})\X)"
    rf"|(?P<word>[[\p{{L}}\p{{M}}\p{{N}}]--[{_PAIRED}]]+(?:(?:\+\+|#)(?![\p{{L}}\p{{N}}]))?)",
    regex.VERSION1,
)
_ASCII_TOKEN = re.compile(r"[A-Za-z0-9]+(?:(?:\+\+|#)(?![A-Za-z0-9]))?")
_CLUSTER = regex.compile(r"\X")
_EMOJI_MODIFIERS = regex.compile(r"[\uFE0E\uFE0F\U0001F3FB-\U0001F3FF]")

# Combining marks that are accents or vowel points on Latin, Greek, Cyrillic, Arabic and
# Hebrew letters, and the Indic nukta: dropped when folding. Other marks of Indic
# scripts (vowel signs, viramas) are part of the letter and stay.
_ACCENTS = regex.compile(
    r"[\u0300-\u036F\u1AB0-\u1AFF\u1DC0-\u1DFF\u20D0-\u20FF\uFE20-\uFE2F"
    r"\u0591-\u05C7\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED\u0640"
    # The nukta of Indic scripts, which writers often leave out (ज़रूरत, जरूरत).
    r"\u093C\u09BC\u0A3C\u0ABC\u0B3C]"
)
_LETTERS = str.maketrans(
    {
        "ı": "i",  # Turkish dotless i; its capital I already lower-cases to i
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ة": "ه",
    }
)


class Kind:
    WORD = "w"
    """A word of an alphabet or abugida: the only kind stemmed."""
    PAIR = "p"
    """Two characters of a run written without spaces (or one, when the run is one)."""
    EMOJI = "e"


class Token(NamedTuple):
    word: str
    """The folded form the index holds and queries are compared with."""
    start: int
    end: int
    kind: str


@functools.lru_cache(maxsize=200_000)
def fold(text: str) -> str:
    """Case, compatibility forms, accents and vowel points made alike."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFKD", text.casefold()).translate(_LETTERS)
    return unicodedata.normalize("NFC", _ACCENTS.sub("", folded))


def tokens(text: str) -> list[Token]:
    """The tokens of `text` in order, with their offsets in it."""
    if text.isascii():
        return [
            Token(m.group().lower(), m.start(), m.end(), Kind.WORD)
            for m in _ASCII_TOKEN.finditer(text)
        ]
    found: list[Token] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "word":
            word = fold(m.group())
            if word:
                found.append(Token(word, m.start(), m.end(), Kind.WORD))
        elif kind == "emoji":
            found.append(Token(_EMOJI_MODIFIERS.sub("", m.group()), m.start(), m.end(), Kind.EMOJI))
        else:
            found += _pairs(m.group(), m.start())
    return found


def words(text: str) -> list[str]:
    """The folded forms of the tokens of `text`, in order."""
    if text.isascii():
        return [w.lower() for w in _ASCII_TOKEN.findall(text)]
    return [t.word for t in tokens(text)]


def token_spans(text: str, count: int) -> list[tuple[int, int]]:
    """Where the first `count` tokens of `text` lie (from, to)."""
    if text.isascii():
        return [m.span() for m in itertools.islice(_ASCII_TOKEN.finditer(text), count)]
    return [(t.start, t.end) for t in tokens(text)[:count]]


def _pairs(run: str, offset: int) -> list[Token]:
    """Overlapping pairs of the run's characters (a character with its marks is one)."""
    clusters = [(m.start(), m.end()) for m in _CLUSTER.finditer(run)]
    if len(clusters) == 1:
        return [Token(fold(run), offset, offset + len(run), Kind.PAIR)]
    return [
        Token(fold(run[a:b]), offset + a, offset + b, Kind.PAIR)
        for (a, _), (_, b) in itertools.pairwise(clusters)
    ]
