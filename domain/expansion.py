"""A query as the index is asked it, whatever the backend: each word with the other forms
of its stem the vocabulary holds, and which tokens of a row match.

A word typed in a query is stemmed in every language with a stemmer; the vocabulary
(each backend's table of (language, stem, word) links, written with the rows) gives the
words of rows in that language with the same stem. So "Haus" finds the "Häuser" of a
German row and "книга" the "книги" of a Russian one, and the English row's "informs" is
not made an answer to the Portuguese stem of "informações". Prefixes, phrases and
excluded words are the words as typed (folded), never stems: `use*` does not find "us",
and `-jammed` leaves "jams" alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .analysis import stem_term
from .languages import STEMMERS, stems_in
from .query import SearchQuery, Term, TermKind

StemKey = tuple[str, str]
"""(language, stem)"""

# The forms of one word a query asks the index for, at most (the most common stems of
# a word in 30 languages stay far below it).
MAX_FORMS = 64


@dataclass(frozen=True, slots=True)
class IndexTerm:
    kind: TermKind
    words: tuple[str, ...]
    """WORD: every form the vocabulary gave (the typed one first); PREFIX: the prefix;
    PHRASE: its words in order."""
    excluded: bool = False
    stems: frozenset[str] = frozenset()
    """WORD: the typed word's stem in every language, as stem terms ("de:haus"): a token
    whose own stem term is one of them matches (where the rows know their stems)."""

    def matches(self, word: str, stem: str | None = None) -> bool:
        """Whether one token (with its stem term, if known) matches a WORD or PREFIX."""
        if self.kind is TermKind.PREFIX:
            return word.startswith(self.words[0])
        return word in self.words or (stem is not None and stem in self.stems)


@dataclass(frozen=True, slots=True)
class IndexQuery:
    included: tuple[IndexTerm, ...]
    excluded: tuple[IndexTerm, ...]

    def matches(
        self, row: list[str], stems: list[str | None] | None = None
    ) -> list[tuple[int, int]] | None:
        """(first, last) token of every match of an included term in the row's words
        (and their stem terms, when given), overlapping ones merged; None when an
        included term is missing or an excluded one is there."""
        found: list[tuple[int, int]] = []
        for term in self.included:
            spans = _spans(term, row, stems)
            if not spans:
                return None
            found += spans
        if any(_spans(term, row, None) for term in self.excluded):
            return None
        return _merged(found)


def stem_keys(query: SearchQuery) -> set[StemKey]:
    """The (language, stem) pairs whose words the vocabulary must tell for `expand`."""
    keys: set[StemKey] = set()
    for term in query.included:
        if term.kind is TermKind.WORD and term.surface:
            keys |= stems_in(term.surface, STEMMERS)
    return keys


def expand(query: SearchQuery, siblings: Mapping[StemKey, Iterable[str]]) -> IndexQuery:
    """The query with each included word's forms: itself and the words `siblings` gives
    for its stems."""
    return IndexQuery(
        tuple(_expanded(t, siblings) for t in query.included),
        tuple(IndexTerm(t.kind, t.words, excluded=True) for t in query.excluded),
    )


def _expanded(term: Term, siblings: Mapping[StemKey, Iterable[str]]) -> IndexTerm:
    if term.kind is not TermKind.WORD or not term.surface:
        return IndexTerm(term.kind, term.words)
    forms = dict.fromkeys(term.words)
    keys = sorted(stems_in(term.surface, STEMMERS))
    for key in keys:
        forms.update(dict.fromkeys(siblings.get(key, ())))
    stems = frozenset(stem_term(*key) for key in keys)
    return IndexTerm(TermKind.WORD, tuple(forms)[:MAX_FORMS], stems=stems)


def _spans(
    term: IndexTerm, row: list[str], stems: list[str | None] | None
) -> list[tuple[int, int]]:
    if term.kind is not TermKind.PHRASE:
        if stems is None:
            return [(i, i) for i, word in enumerate(row) if term.matches(word)]
        return [(i, i) for i, word in enumerate(row) if term.matches(word, stems[i])]
    seq, n = list(term.words), len(term.words)
    first = seq[0]
    return [(i, i + n - 1) for i, word in enumerate(row) if word == first and row[i : i + n] == seq]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged
