"""What the search index holds of a text, whatever the backend: its words in order (for
phrases, prefixes and snippets), the language it is stemmed in, and the links from each
word to its stem in that language (the vocabulary, through which a query's word finds the
other forms of it: `domain/expansion.py`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .languages import NO_LANGUAGE, detect, stem
from .words import Kind, tokens

# Shorter stems join unrelated words (a stemmer takes "onat" to "on" in some language):
# such words are found as written only.
MIN_STEM = 3

Link = tuple[str, str, str]
"""(language, stem, word): `word` of a row in `language` has the stem `stem`."""


@dataclass(frozen=True, slots=True)
class Analysis:
    words: list[str]
    """The folded tokens in order, as the index holds them."""
    language: str
    links: frozenset[Link]
    """A link for every distinct word whose stem in the row's language is another word."""

    @property
    def stream(self) -> str:
        """The words as one string of space-separated tokens (no token holds a space)."""
        return " ".join(self.words)

    def stems(self) -> list[str | None]:
        """Per word, its stem as a term (`stem_term`), or None when it is its own stem."""
        linked = {word: stem_term(language, stem) for language, stem, word in self.links}
        return [linked.get(word) for word in self.words]

    def terms(self) -> list[str]:
        """The distinct words and stem terms, sorted: what a row of the MongoDB backend
        holds to be found by."""
        return sorted({*self.words, *(stem_term(*link[:2]) for link in self.links)})


def stem_term(language: str, stem: str) -> str:
    """A stem in a language as one term ("de:haus"); no word holds a colon."""
    return f"{language}:{stem}"


def analyze(text: str, languages: Collection[str] = ()) -> Analysis:
    """The index's view of `text`, stemmed in its language among `languages` (every
    stemmed language when empty)."""
    found = tokens(text)
    language = detect(text, languages) if found else NO_LANGUAGE
    links: set[Link] = set()
    if language != NO_LANGUAGE:
        seen: set[str] = set()
        for token in found:
            surface = text[token.start : token.end].lower()
            if token.kind != Kind.WORD or surface in seen:
                continue
            seen.add(surface)
            stemmed = stem(surface, language)
            if stemmed != token.word and len(stemmed) >= MIN_STEM:
                links.add((language, stemmed, token.word))
    return Analysis([t.word for t in found], language, frozenset(links))
