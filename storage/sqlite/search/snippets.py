"""Snippets: the matched words of a row marked, cut to a few words around the first match,
as HTML-safe text.

Rows come marked with two control characters (FTS5's highlight() puts them in, or the
phrase index's `PhraseQuery.marked`); the finished snippet turns them into <mark> tags
after escaping the text.
"""

from __future__ import annotations

import html

MARK_OPEN, MARK_CLOSE = "\x02", "\x03"
HIGHLIGHT = f"highlight(search_index, 0, '{MARK_OPEN}', '{MARK_CLOSE}')"
SNIPPET_WORDS = 16
ELLIPSIS = "…"


def around_first_mark(text: str) -> str:
    """About SNIPPET_WORDS words of `text` from just before its first marked word."""
    words = text.split(" ")
    first = next((i for i, w in enumerate(words) if MARK_OPEN in w), 0)
    start = max(0, first - 2)
    end = min(len(words), start + SNIPPET_WORDS)
    cut = " ".join(words[start:end])
    return (ELLIPSIS if start else "") + cut + (ELLIPSIS if end < len(words) else "")


def marked(snippet: str) -> str:
    """HTML-safe text with the matched words in <mark>."""
    return html.escape(snippet).replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>")
