"""A query as the index is asked it, whatever the backend: each word with the other forms
of its stem and the near spellings the vocabulary holds, the order in which words may be
left out, and how well a row matches.

Forms: a word typed in a query is stemmed in every language with a stemmer; the
vocabulary (each backend's links from words to stems per language, written with the rows)
gives the words of rows in that language with the same stem. So "Haus" finds the
"Häuser" of a German row and "книга" the "книги" of a Russian one. Prefixes, phrases and
excluded words are the words as typed (folded), never stems: `use*` does not find "us",
and `-jammed` leaves "jams" alone.

Typos: a word of five letters or more also matches words one edit away (a letter added,
left out, changed, or two swapped), of nine or more two edits away, beginning with the
same letter (as Meilisearch counts a first letter wrong as two typos).

Ranking, as Meilisearch's matching strategy "frequency": rows holding every word (as
typed or a form of it) come first, then rows with typos, then rows missing the most
common word, with typos, missing the two most common, and so on; the least common word is
never left out, nor a quoted phrase or a prefix. Within one such level, fewer typos rank
first, then BM25. `RowMatch.score` puts the three in one number (lower is better), so a
cursor compares with it as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from rapidfuzz.distance import OSA

from .analysis import stem_term
from .languages import STEMMERS, stems_in
from .query import SearchQuery, Term, TermKind

StemKey = tuple[str, str]
"""(language, stem)"""

# The forms of one word a query asks the index for, at most (the most common stems of
# a word in 30 languages stay far below it), and the near spellings, at most.
MAX_FORMS = 64
MAX_TYPO_FORMS = 16
# A level outweighs any number of typos, a typo any BM25 score (which lies in (-2.2, 0]).
LEVEL_WEIGHT, TYPO_WEIGHT = 10_000.0, 10.0

Span = tuple[int, int]


def typo_budget(word: str) -> int:
    """How many typos a word typed in a query may hold: none under 5 characters (an
    Indic vowel sign counts as one), one from 5, two from 9. Words with digits get none
    (an id or a number is meant exactly)."""
    if any(c.isdigit() for c in word):
        return 0
    return 2 if len(word) >= 9 else 1 if len(word) >= 5 else 0


@dataclass(frozen=True, slots=True)
class Shape:
    """Words of the vocabulary a typed word may be a typo of: beginning with `first`,
    `shortest` to `longest` characters long, at most `budget` edits from `word`."""

    word: str
    first: str
    shortest: int
    longest: int
    budget: int


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
    typos: tuple[tuple[str, int], ...] = ()
    """WORD: (word, typos) of the near spellings the vocabulary holds."""
    droppable: bool = False
    """Whether the term may be left out (words, and words written as several tokens;
    not quoted phrases or prefixes)."""
    rows: int = 0
    """How many rows hold it, as the vocabulary counts (the most common go first)."""
    forms: frozenset[str] = field(init=False, repr=False, compare=False)
    near: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Sets for the row checks, which run over every token of every row scored.
        object.__setattr__(self, "forms", frozenset(self.words))
        object.__setattr__(self, "near", dict(self.typos))

    def matches(self, word: str, stem: str | None = None) -> bool:
        """Whether one token (with its stem term, if known) matches a WORD or PREFIX."""
        if self.kind is TermKind.PREFIX:
            return word.startswith(self.words[0])
        return word in self.words or (stem is not None and stem in self.stems)

    def index_words(self, with_typos: bool) -> tuple[str, ...]:
        """The words a WORD term asks the index for."""
        if with_typos:
            return self.words + tuple(w for w, _ in self.typos)
        return self.words


@dataclass(frozen=True, slots=True)
class RowMatch:
    level: int
    """How many of the most common words had to be left out for the row to match."""
    typos: int
    spans: list[Span]
    """(first, last) token of every match, in order, overlapping ones merged."""

    def score(self, bm25: float) -> float:
        return self.level * LEVEL_WEIGHT + self.typos * TYPO_WEIGHT + bm25


@dataclass(frozen=True, slots=True)
class IndexQuery:
    included: tuple[IndexTerm, ...]
    excluded: tuple[IndexTerm, ...]
    dropped: int = 0
    """This step of the ladder leaves out the first `dropped` terms of `drop_order`."""
    with_typos: bool = False
    """and asks the index for the near spellings too."""
    drop_order: tuple[int, ...] = field(init=False, compare=False)
    """Indexes of the included terms that may be left out, most common first (the later
    in the query first among equals), the least common kept back."""

    def __post_init__(self) -> None:
        droppable = [i for i, t in enumerate(self.included) if t.droppable]
        order = sorted(droppable, key=lambda i: (-self.included[i].rows, -i))
        if len(order) == len(self.included):
            order = order[:-1]
        object.__setattr__(self, "drop_order", tuple(order))

    @property
    def required(self) -> tuple[IndexTerm, ...]:
        left_out = set(self.drop_order[: self.dropped])
        return tuple(t for i, t in enumerate(self.included) if i not in left_out)

    def levels(self) -> list[IndexQuery]:
        """The ladder, strictest first: every word, then with typos, then without the
        most common word, with typos, and so on (typo steps only where a word has near
        spellings)."""
        typos = any(t.typos for t in self.included)
        steps = []
        for dropped in range(len(self.drop_order) + 1):
            steps.append(replace(self, dropped=dropped, with_typos=False))
            if typos:
                steps.append(replace(self, dropped=dropped, with_typos=True))
        return steps

    def match(self, row: list[str], stems: list[str | None] | None = None) -> RowMatch | None:
        """How the row (its words, and their stem terms when known) matches the whole
        query, whatever the step: None when it misses a term no step leaves out, or holds
        an excluded one."""
        if any(_exact(term, row, None) for term in self.excluded):
            return None
        spans: list[Span] = []
        missing: set[int] = set()
        typos = 0
        for i, term in enumerate(self.included):
            found = _exact(term, row, stems)
            if not found and term.typos:
                near = term.near
                distances = [(near[w], j) for j, w in enumerate(row) if w in near]
                if distances:
                    typos += min(d for d, _ in distances)
                    found = [(j, j) for _, j in distances]
            if found:
                spans += found
            else:
                missing.add(i)
        order = self.drop_order
        level = 0
        for i in missing:
            if i not in order:
                return None
            level = max(level, order.index(i) + 1)
        if len(self.included) == 1 and self.included[0].kind is not TermKind.PHRASE:
            return RowMatch(level, typos, spans)  # in order, one token each
        return RowMatch(level, typos, _merged(spans))

    def in_step(self, row: list[str], stems: list[str | None] | None = None) -> bool:
        """Whether the index finds the row at this step (for rows a superset found)."""
        if any(_exact(term, row, None) for term in self.excluded):
            return False
        for term in self.required:
            if _exact(term, row, stems):
                continue
            if not (self.with_typos and set(row) & {w for w, _ in term.typos}):
                return False
        return True

    def matches(self, row: list[str], stems: list[str | None] | None = None) -> list[Span] | None:
        """The spans of `match`, or None."""
        found = self.match(row, stems)
        return None if found is None else found.spans


def stem_keys(query: SearchQuery) -> set[StemKey]:
    """The (language, stem) pairs whose words the vocabulary must tell for `expand`."""
    keys: set[StemKey] = set()
    for term in query.included:
        if term.kind is TermKind.WORD and term.surface:
            keys |= stems_in(term.surface, STEMMERS)
    return keys


def typo_shapes(query: SearchQuery) -> list[Shape]:
    """Where the vocabulary's near spellings of the query's words lie."""
    shapes = []
    for term in query.included:
        if term.kind is TermKind.WORD and term.surface and not term.quoted:
            word = term.words[0]
            budget = typo_budget(word)
            if budget:
                n = len(word)
                shapes.append(Shape(word, word[0], n - budget, n + budget, budget))
    return shapes


def near_spellings(shape: Shape, words: Iterable[str]) -> list[tuple[str, int]]:
    """(word, typos) of the `words` within the shape's budget of its word, fewest typos
    first."""
    found = []
    for word in words:
        if word == shape.word or not shape.shortest <= len(word) <= shape.longest:
            continue
        if not word.startswith(shape.first):
            continue
        distance = OSA.distance(shape.word, word, score_cutoff=shape.budget)
        if distance <= shape.budget:
            found.append((word, distance))
    return sorted(found, key=lambda f: (f[1], f[0]))


def expand(
    query: SearchQuery,
    siblings: Mapping[StemKey, Iterable[str]],
    near: Mapping[str, Iterable[tuple[str, int]]] | None = None,
    rows: Mapping[str, int] | None = None,
) -> IndexQuery:
    """The query with each included word's forms (itself and the words `siblings` gives
    for its stems), near spellings (`near`: (word, typos) by typed word) and row counts
    (`rows`, by word)."""
    counts = rows or {}
    included = []
    for term in query.included:
        expanded = _expanded(term, siblings)
        typos: tuple[tuple[str, int], ...] = ()
        if near and expanded.kind is TermKind.WORD:
            known = set(expanded.words)
            typos = tuple((w, d) for w, d in near.get(term.words[0], ()) if w not in known)
            typos = typos[:MAX_TYPO_FORMS]
        if expanded.kind is TermKind.WORD:
            held = sum(counts.get(w, 0) for w in expanded.words)
        else:
            held = min((counts.get(w, 0) for w in expanded.words), default=0)
        included.append(
            replace(
                expanded,
                typos=typos,
                droppable=term.kind is not TermKind.PREFIX and not term.quoted,
                rows=held,
            )
        )
    return IndexQuery(
        tuple(included),
        tuple(IndexTerm(t.kind, t.words, excluded=True) for t in query.excluded),
    )


def counted_words(query: IndexQuery) -> set[str]:
    """The words whose row counts rank the query's terms."""
    return {w for t in query.included if t.kind is not TermKind.PREFIX for w in t.words}


def _expanded(term: Term, siblings: Mapping[StemKey, Iterable[str]]) -> IndexTerm:
    if term.kind is not TermKind.WORD or not term.surface:
        return IndexTerm(term.kind, term.words)
    forms = dict.fromkeys(term.words)
    keys = sorted(stems_in(term.surface, STEMMERS))
    for key in keys:
        forms.update(dict.fromkeys(siblings.get(key, ())))
    stems = frozenset(stem_term(*key) for key in keys)
    return IndexTerm(TermKind.WORD, tuple(forms)[:MAX_FORMS], stems=stems)


def _exact(term: IndexTerm, row: list[str], stems: list[str | None] | None) -> list[Span]:
    if term.kind is TermKind.PREFIX:
        prefix = term.words[0]
        return [(i, i) for i, word in enumerate(row) if word.startswith(prefix)]
    if term.kind is TermKind.WORD:
        forms = term.forms
        if stems is not None and term.stems:
            own = term.stems
            pairs = enumerate(zip(row, stems, strict=True))
            return [(i, i) for i, (w, s) in pairs if w in forms or s in own]
        if forms.isdisjoint(row):
            return []
        return [(i, i) for i, word in enumerate(row) if word in forms]
    seq, n = list(term.words), len(term.words)
    first = seq[0]
    return [(i, i + n - 1) for i, word in enumerate(row) if word == first and row[i : i + n] == seq]


def _merged(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged
