"""The search index's tokenizer (FTS5 `porter unicode61 remove_diacritics 2`) in Python.

The phrase index (phrases.py) stores which tokens follow one another in a row, and a
search checks and marks phrases in the rows it returns; both must see exactly the
tokens FTS5 sees, or a phrase FTS5 would find could be missed. For ASCII text the rules
are short: a token is a run of ASCII letters and digits, folded to lower case, then
stemmed by FTS5's Porter stemmer, which `porter_stem` follows rule for rule (tests
compare both over a large vocabulary). Text with any other character goes through FTS5
itself, in a private in-memory table, so Unicode folding and categories are FTS5's own.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable

from .. import driver

FTS5_TOKENIZER = "porter unicode61 remove_diacritics 2"
_ASCII_TOKEN = re.compile(r"[A-Za-z0-9]+")
# FTS5 leaves tokens shorter or longer than these (in bytes) unstemmed.
_STEM_MIN, _STEM_MAX = 3, 64


# ASCII text lower-cased, everything but letters and digits made a space: then split()
# gives FTS5's tokens, several times faster than a regular expression.
_SEPARATORS = str.maketrans(
    {chr(c): " " for c in range(128) if not (chr(c).isalnum() and chr(c).isascii())}
)
# Stems of the words seen (a dict lookup is several times cheaper than porter_stem's
# cache), up to a bound that a vocabulary of chats stays within.
_STEMS: dict[str, str] = {}
_STEMS_MAX = 500_000


def tokens(text: str) -> list[str]:
    """The tokens of `text` in order, as the search index holds them."""
    if not text.isascii():
        return _fts5_tokens(text)
    return _stems_of(text.lower().translate(_SEPARATORS).split())


def spans(text: str) -> tuple[list[str], list[tuple[int, int]]] | None:
    """The tokens of `text` and where each lies in it (str offsets, from, to); None when
    the text is not ASCII (FTS5 does not tell where a token lies, only its position)."""
    if not text.isascii():
        return None
    found = [(m.group().lower(), m.span()) for m in _ASCII_TOKEN.finditer(text)]
    return _stems_of([w for w, _ in found]), [span for _, span in found]


def learn(texts: Iterable[str]) -> int:
    """Stem the words of `texts` ahead of need; how many words the cache holds after.
    A process starts knowing no stems, and porter_stem costs time for each new word: the
    first phrase searches of a server would otherwise learn a chat's vocabulary as they go,
    and be the slowest ones."""
    for text in texts:
        if text.isascii():  # other text goes through FTS5 each time: nothing to learn
            tokens(text)
    return len(_STEMS)


def _stems_of(words: list[str]) -> list[str]:
    stems = _STEMS
    try:
        return list(map(stems.__getitem__, words))
    except KeyError:
        _learn([w for w in dict.fromkeys(words) if w not in stems])
        return [stems[w] if w in stems else porter_stem(w) for w in words]


# From this many new words on, FTS5 stems them in one call, whose setup then pays for
# itself, rather than porter_stem one by one.
_BATCH_MIN = 64


def _learn(words: list[str]) -> None:
    room = _STEMS_MAX - len(_STEMS)
    words = words[: max(room, 0)]
    if len(words) >= _BATCH_MIN:
        # Each word is a run of letters and digits: one token each, in order.
        _STEMS.update(zip(words, _fts5_tokens(" ".join(words)), strict=True))
    else:
        _STEMS.update((w, porter_stem(w)) for w in words)


# Porter's stemmer as FTS5 applies it (ext/fts5/fts5_tokenize.c): the original algorithm
# with the few revisions FTS5 made ("logi" -> "log", "bli" -> "ble"), on lower-case ASCII.


def _is_vowel(c: str, y_is_vowel: bool) -> bool:
    return c in "aeiou" or (y_is_vowel and c == "y")


def _gobble_vc(word: str, start: int, end: int, previous_consonant: bool) -> int:
    """Past the first vowel-consonant sequence of word[start:end]: the offset (from
    `start`) just after it, or 0 when there is none."""
    consonant = previous_consonant
    i = start
    while i < end:
        consonant = not _is_vowel(word[i], consonant)
        if not consonant:
            break
        i += 1
    else:
        return 0
    i += 1
    while i < end:
        consonant = not _is_vowel(word[i], consonant)
        if consonant:
            return i + 1 - start
        i += 1
    return 0


def _m_gt0(word: str, n: int) -> bool:
    return _gobble_vc(word, 0, n, False) != 0


def _m_gt1(word: str, n: int) -> bool:
    first = _gobble_vc(word, 0, n, False)
    return bool(first) and _gobble_vc(word, first, n, True) != 0


def _m_eq1(word: str, n: int) -> bool:
    first = _gobble_vc(word, 0, n, False)
    return bool(first) and _gobble_vc(word, first, n, True) == 0


def _o_star(word: str, n: int) -> bool:
    """Ends consonant-vowel-consonant, the last not w, x or y."""
    if word[n - 1] in "wxy":
        return False
    mask, consonant = 0, False
    for i in range(n):
        consonant = not _is_vowel(word[i], consonant)
        mask = (mask << 1) + consonant
    return (mask & 7) == 5


def _m_gt1_s_or_t(word: str, n: int) -> bool:
    return word[n - 1] in "st" and _m_gt1(word, n)


def _has_vowel(word: str, n: int) -> bool:
    return any(_is_vowel(word[i], i > 0) for i in range(n))


_Rule = tuple[str, Callable[[str, int], bool], str]

# Per step, the suffixes in the order FTS5 tries them: the first one the word ends with
# (and is longer than) is the only one considered; its condition, on the stem before the
# suffix, decides whether it is replaced.
_STEP2: tuple[_Rule, ...] = (
    ("ational", _m_gt0, "ate"),
    ("tional", _m_gt0, "tion"),
    ("enci", _m_gt0, "ence"),
    ("anci", _m_gt0, "ance"),
    ("izer", _m_gt0, "ize"),
    ("logi", _m_gt0, "log"),
    ("bli", _m_gt0, "ble"),
    ("alli", _m_gt0, "al"),
    ("entli", _m_gt0, "ent"),
    ("eli", _m_gt0, "e"),
    ("ousli", _m_gt0, "ous"),
    ("ization", _m_gt0, "ize"),
    ("ation", _m_gt0, "ate"),
    ("ator", _m_gt0, "ate"),
    ("alism", _m_gt0, "al"),
    ("iveness", _m_gt0, "ive"),
    ("fulness", _m_gt0, "ful"),
    ("ousness", _m_gt0, "ous"),
    ("aliti", _m_gt0, "al"),
    ("iviti", _m_gt0, "ive"),
    ("biliti", _m_gt0, "ble"),
)
_STEP3: tuple[_Rule, ...] = (
    ("ical", _m_gt0, "ic"),
    ("ness", _m_gt0, ""),
    ("icate", _m_gt0, "ic"),
    ("iciti", _m_gt0, "ic"),
    ("ful", _m_gt0, ""),
    ("ative", _m_gt0, ""),
    ("alize", _m_gt0, "al"),
)
_STEP4: tuple[_Rule, ...] = (
    ("al", _m_gt1, ""),
    ("ance", _m_gt1, ""),
    ("ence", _m_gt1, ""),
    ("er", _m_gt1, ""),
    ("ic", _m_gt1, ""),
    ("able", _m_gt1, ""),
    ("ible", _m_gt1, ""),
    ("ant", _m_gt1, ""),
    ("ement", _m_gt1, ""),
    ("ment", _m_gt1, ""),
    ("ent", _m_gt1, ""),
    ("ion", _m_gt1_s_or_t, ""),
    ("ou", _m_gt1, ""),
    ("ism", _m_gt1, ""),
    ("ate", _m_gt1, ""),
    ("iti", _m_gt1, ""),
    ("ous", _m_gt1, ""),
    ("ive", _m_gt1, ""),
    ("ize", _m_gt1, ""),
)


def _apply(word: str, rules: tuple[_Rule, ...]) -> str:
    n = len(word)
    # FTS5 picks the rules by the word's last but one letter, so only suffixes sharing it
    # are ever compared: the same as trying them all in order.
    for suffix, condition, replacement in rules:
        if n > len(suffix) and word.endswith(suffix):
            stem = n - len(suffix)
            return word[:stem] + replacement if condition(word, stem) else word
    return word


@functools.lru_cache(maxsize=200_000)
def porter_stem(token: str) -> str:
    """FTS5's porter stem of a lower-case ASCII token."""
    if not _STEM_MIN <= len(token) <= _STEM_MAX:
        return token
    w = token
    # Step 1a: plurals.
    if w[-1] == "s":
        if w[-2] == "e":
            sses_or_ies = (len(w) > 4 and w[-4:-2] == "ss") or (len(w) > 3 and w[-3] == "i")
            w = w[:-2] if sses_or_ies else w[:-1]
        elif w[-2] != "s":
            w = w[:-1]
    # Step 1b: -eed, -ed, -ing.
    removed = False
    n = len(w)
    if n > 3 and w.endswith("eed"):
        if _m_gt0(w, n - 3):
            w = w[:-1]
    elif n > 2 and w.endswith("ed"):
        if _has_vowel(w, n - 2):
            w, removed = w[:-2], True
    elif n > 3 and w.endswith("ing") and _has_vowel(w, n - 3):
        w, removed = w[:-3], True
    if removed:
        n = len(w)
        if n > 2 and w[-2:] in ("at", "bl", "iz"):
            w += "e"
        elif not _is_vowel(w[-1], False) and w[-1] not in "lsz" and n > 1 and w[-1] == w[-2]:
            w = w[:-1]
        elif _m_eq1(w, n) and _o_star(w, n):
            w += "e"
    # Step 1c: a final y after a vowel becomes i.
    if w[-1] == "y" and _has_vowel(w, len(w) - 1):
        w = w[:-1] + "i"
    w = _apply(w, _STEP2)
    w = _apply(w, _STEP3)
    w = _apply(w, _STEP4)
    # Step 5a: a final e.
    n = len(w)
    if w[-1] == "e" and (_m_gt1(w, n - 1) or (_m_eq1(w, n - 1) and not _o_star(w, n - 1))):
        w = w[:-1]
    # Step 5b: a final double l.
    n = len(w)
    if n > 1 and w[-1] == "l" and w[-2] == "l" and _m_gt1(w, n - 1):
        w = w[:-1]
    return w


# Anything but ASCII: FTS5's own tokenizer on a private in-memory table per thread.

_local = threading.local()


def scratch_connection() -> driver.Connection:
    """This thread's in-memory connection with an empty FTS5 table `tokenized` (and its
    `tokenized_terms` vocabulary) of the search index's tokenizer: use it inside a
    transaction that is rolled back."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = driver.connect_memory()
        conn.execute(
            f"CREATE VIRTUAL TABLE tokenized USING fts5(body, tokenize = '{FTS5_TOKENIZER}')"
        )
        conn.execute("CREATE VIRTUAL TABLE tokenized_terms USING fts5vocab(tokenized, instance)")
        _local.conn = conn
    return conn


def _fts5_tokens(text: str) -> list[str]:
    conn = scratch_connection()
    conn.execute("BEGIN")
    try:
        conn.execute("INSERT INTO tokenized (rowid, body) VALUES (1, ?)", (text,))
        rows = conn.execute("SELECT term FROM tokenized_terms ORDER BY offset").fetchall()
    finally:
        conn.execute("ROLLBACK")
    return [r[0] for r in rows]
