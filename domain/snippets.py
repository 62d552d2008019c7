"""Snippets: a few words of a matching row around its densest run of matches, the matched
words marked whole (a Devanagari word with its vowel signs, a Chinese word as the run of
characters its pairs cover), as HTML-safe text. The same for every backend."""

from __future__ import annotations

import html

from .analysis import analyze
from .expansion import IndexQuery
from .words import Token, tokens

SNIPPET_TOKENS = 16
ELLIPSIS = "…"


def snippet(text: str, query: IndexQuery) -> str | None:
    """The snippet of `text` for `query`, or None when the text does not match it. Words
    are compared with their stems in the text's language, as the MongoDB backend's rows
    hold them (SQLite's query names the words those stems stand for already)."""
    found = tokens(text)
    matches = query.matches([t.word for t in found], analyze(text).stems())
    return None if matches is None else render(text, found, matches)


def render(text: str, found: list[Token], matches: list[tuple[int, int]]) -> str:
    """`text` (whose tokens are `found`) cut around its densest run of `matches` ((first,
    last) token of each, in order), those marked."""
    if not found:
        return html.escape(text)
    # The window of SNIPPET_TOKENS tokens that holds the most matches.
    starts = [first for first, _ in matches] or [0]
    best, best_count = 0, -1
    for p in starts:
        start = max(0, min(p - 2, len(found) - SNIPPET_TOKENS))
        count = sum(1 for q in starts if start <= q < start + SNIPPET_TOKENS)
        if count > best_count:
            best, best_count = start, count
    end = min(len(found), best + SNIPPET_TOKENS)
    low = found[best].start if best > 0 else 0
    high = found[end - 1].end if end < len(found) else len(text)
    marks: list[list[int]] = []
    for first, last in matches:
        a, b = found[first].start, found[last].end
        if b <= low or a >= high:
            continue
        if marks and a <= marks[-1][1]:
            marks[-1][1] = max(b, marks[-1][1])  # pairs of one Chinese word overlap
        else:
            marks.append([a, b])
    out = [ELLIPSIS] if best > 0 else []
    cursor = low
    for a, b in marks:
        out += [html.escape(text[cursor:a]), "<mark>", html.escape(text[a:b]), "</mark>"]
        cursor = b
    out.append(html.escape(text[cursor:high]))
    if end < len(found):
        out.append(ELLIPSIS)
    return "".join(out)
