"""Snippets: a few words of a matching row around its densest run of matches, the matched
words marked whole (a Devanagari word with its vowel signs, a Chinese word as the run of
characters its pairs cover), as HTML-safe text. The same for every backend."""

from __future__ import annotations

import bisect
import html
from collections.abc import Callable

from .expansion import IndexQuery
from .words import token_spans, words

SNIPPET_TOKENS = 16
ELLIPSIS = "…"


def snippet(text: str, query: IndexQuery, *, stems: list[str | None] | None = None) -> str | None:
    """The snippet of `text` for `query`, or None when the text does not match it. With
    `stems` (each token's stem term, `Analysis.stems`), words are also compared through
    their stems, as the MongoDB backend's rows hold them (SQLite's query names the words
    those stems stand for already)."""
    row = words(text)
    matches = query.matches(row, stems)
    if matches is None:
        return None
    return render(text, len(row), matches, lambda n: token_spans(text, n))


def render(
    text: str,
    count: int,
    matches: list[tuple[int, int]],
    spans: Callable[[int], list[tuple[int, int]]],
) -> str:
    """`text` (of `count` tokens) cut around its densest run of `matches` ((first, last)
    token of each, in order), those marked; `spans(n)` gives where its first n tokens
    lie (only those of the window are needed)."""
    if not count:
        return html.escape(text)
    # The window of SNIPPET_TOKENS tokens that holds the most matches.
    starts = [first for first, _ in matches] or [0]
    best, best_count = 0, -1
    for p in starts:
        start = max(0, min(p - 2, count - SNIPPET_TOKENS))
        inside = bisect.bisect_left(starts, start + SNIPPET_TOKENS) - bisect.bisect_left(
            starts, start
        )
        if inside > best_count:
            best, best_count = start, inside
    end = min(count, best + SNIPPET_TOKENS)
    where = spans(end)
    low = where[best][0] if best > 0 else 0
    high = where[end - 1][1] if end < count else len(text)
    marks: list[list[int]] = []
    for first, last in matches:
        if last < best or first >= end:
            continue
        a, b = where[max(first, best)][0], where[min(last, end - 1)][1]
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
    if end < count:
        out.append(ELLIPSIS)
    return "".join(out)
