"""What a search asks for: the query language people expect, filters, scope and hits.

Query language: words (stemmed in the languages of the text they meet), "exact phrases",
prefix*, and -excluded words or -"phrases" (the words as typed); case, accents and vowel
points do not matter, and a query is cut into tokens exactly as the text is
(domain/words.py). Any string gives a query or
InvalidInput, never anything worse: stray operators are dropped and an unclosed quote
closes at the end.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InvalidInput
from .models import Person, Session, TurnRole
from .words import Kind, tokens

MAX_QUERY_CHARS = 500
MAX_TERMS = 32
# A hit shows the session's best matching turns, at most this many.
TURNS_PER_HIT = 3
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


class TermKind(enum.StrEnum):
    WORD = "WORD"
    """One token: a word (with the other forms of its stem), an emoji, a pair of CJK
    characters."""
    PREFIX = "PREFIX"
    """Words beginning with the token (as written, not its stem)."""
    PHRASE = "PHRASE"
    """Tokens one after another: a quoted phrase, a word with inner punctuation
    ("e-mail"), or a word of a script written without spaces (its pairs of characters)."""


@dataclass(frozen=True, slots=True)
class Term:
    kind: TermKind
    words: tuple[str, ...]
    """The folded tokens (domain/words.py)."""
    excluded: bool = False
    surface: str = ""
    """A WORD of an alphabet as typed, to stem in each language; empty for other terms."""
    quoted: bool = False
    written: tuple[str, ...] = ()
    """The tokens as typed, for engines that fold and stem by themselves (Atlas)."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    terms: tuple[Term, ...]

    @property
    def included(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if not t.excluded)

    @property
    def excluded(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.excluded)


def _term(text: str, excluded: bool, quoted: bool) -> Term | None:
    found = tokens(text.rstrip("*"))
    if not found:
        return None
    words = tuple(t.word for t in found)
    written = tuple(text[t.start : t.end] for t in found)
    if len(found) > 1:
        return Term(TermKind.PHRASE, words, excluded, quoted=quoted, written=written)
    (token,) = found
    if (not quoted and text.endswith("*") and len(token.word) >= 2) or (
        token.kind == Kind.PAIR and len(token.word) == 1
    ):
        # A lone character of a script written without spaces is the start of a pair.
        return Term(TermKind.PREFIX, words, excluded, written=written)
    surface = written[0] if token.kind == Kind.WORD else ""
    return Term(TermKind.WORD, words, excluded, surface, quoted, written)


def parse_query(text: str) -> SearchQuery:
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(f"The search is {len(text)} characters; the limit is {MAX_QUERY_CHARS}.")
    terms: list[Term] = []
    for match in _TOKEN.finditer(text):
        negated_phrase, phrase, bare = match.groups()
        if bare is None:
            term = _term(phrase, bool(negated_phrase), quoted=True)
        else:
            excluded = bare.startswith("-") and len(bare) > 1
            term = _term(bare[1:] if excluded else bare, excluded, quoted=False)
        if term is not None:
            terms.append(term)
    if not terms:
        raise InvalidInput("Type at least one word to search for.")
    if len(terms) > MAX_TERMS:
        raise InvalidInput(f"A search holds at most {MAX_TERMS} words and phrases.")
    query = SearchQuery(tuple(terms))
    if not query.included:
        raise InvalidInput("Say what to find, not only what to leave out.")
    return query


def searchable_text(content: str, tools: Iterable[tuple[str, Any, Any, str | None]]) -> str:
    """What search finds in a turn, whatever the backend: what was said, and each tool's
    name, the scalar values it was given and returned, and its error.
    `tools` are (name, input, output, error) of the turn's tool invocations."""
    parts = [content]
    for name, given, returned, error in tools:
        parts.append(name)
        _scalars(given, parts)
        _scalars(returned, parts)
        if error:
            parts.append(error)
    return "\n".join(p for p in parts if p)


def _scalars(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, dict):
        for item in value.values():
            _scalars(item, out)
    elif isinstance(value, list):
        for item in value:
            _scalars(item, out)
    else:
        out.append(str(value))


class SearchOrder(enum.StrEnum):
    RELEVANCE = "RELEVANCE"
    NEWEST = "NEWEST"


@dataclass(frozen=True, slots=True)
class SearchFilter:
    chat_app_ids: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    participants: tuple[Person, ...] = ()
    """Sessions any of these people took part in."""
    tags: tuple[str, ...] = ()
    include_archived: bool = False
    roles: tuple[TurnRole, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchScope:
    """What the caller may read, as the index understands it: their own sessions (or the
    whole entity for those who oversee it) and the sessions shared with them."""

    entity_id: str
    owner_id: str | None
    shared_session_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchCursor:
    """Relevance order: (score, session id); newest order: (score = activity micros, id)."""

    score: float
    session_id: str


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One search as a Store answers it: the query, what the caller may read, the filter,
    the order and the page (the `limit` hits after the cursor `after`)."""

    query: SearchQuery
    scope: SearchScope
    filter: SearchFilter
    order: SearchOrder
    after: SearchCursor | None
    limit: int


@dataclass(slots=True)
class TurnHit:
    turn_id: str
    seq: int
    role: TurnRole
    snippet: str
    score: float


@dataclass(slots=True)
class SessionHit:
    session: Session
    score: float
    """Relevance of the best matching row (BM25-like: lower is better)."""
    sort_key: float
    """What the order sorts on: the score, or activity time in microseconds; with the
    session id, the cursor of this hit."""
    title_snippet: str | None
    turns: list[TurnHit] = field(default_factory=list)
