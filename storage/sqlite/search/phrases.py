"""The phrase index: which tokens follow one another in each row of the search index.

FTS5 finds a phrase by reading the positions of every row that holds all of its words.
For a phrase of common words over a whole entity that is most of the entity's rows, even
when the phrase itself is rare (tens of milliseconds to seconds at millions of turns). The
table `search_pairs` holds, for every row of `search_index` (same rowid), each pair of
adjacent tokens as one term ("printer_jam") beside the row's scope tokens, without
positions (detail=none) and without a copy of the text (contentless). A phrase of n tokens
then finds its rows as the n-1 pairs ANDed: exactly the phrase's rows for two tokens, a
small superset for more, which the rows' own text settles (`PhraseQuery.marked`, which
also marks the matches as FTS5's highlight() would, for snippets and scores).

Pair and scope terms cannot meet: scope tokens are digits, pairs always hold a "_",
which the unicode61 tokenizer never leaves in a token.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ....domain.query import SearchQuery, TermKind
from .. import driver
from . import tokenizer
from .snippets import MARK_CLOSE, MARK_OPEN

PAIRS_TABLE = "search_pairs"


def pairs_of(tokens: list[str]) -> list[str]:
    return list(dict.fromkeys(map("_".join, itertools.pairwise(tokens))))


def pair_terms(body: str, scope: str) -> str:
    """The `terms` of a row of search_pairs: its text's pairs and its scope tokens."""
    pairs = pairs_of(tokenizer.tokens(body))
    return f"{' '.join(pairs)} {scope}" if pairs else scope


def index_row(conn: driver.Connection, rowid: int, body: str, scope: str) -> None:
    conn.execute(
        f"INSERT INTO {PAIRS_TABLE} (rowid, terms) VALUES (?, ?)", (rowid, pair_terms(body, scope))
    )


def main_index_rows(conn: driver.Connection, rowids: list[int]) -> list[tuple[int, str, str]]:
    """(rowid, body, scope) of these rows of search_index, from the table FTS5 keeps its
    text in (a rowid lookup there costs far less than one through FTS5)."""
    found = []
    for start in range(0, len(rowids), 500):
        chunk = rowids[start : start + 500]
        found += conn.execute(
            "SELECT id, c0, c1 FROM search_index_content"
            f" WHERE id IN ({', '.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
    return found


def bodies(conn: driver.Connection, rowids: list[int]) -> dict[int, str]:
    """The indexed text of these rows of search_index."""
    return {rowid: body for rowid, body, _ in main_index_rows(conn, rowids)}


def any_matches(conn: driver.Connection, phrase: PhraseQuery, rowids: list[int]) -> bool:
    """Whether any of these rows of search_index matches the phrase query."""
    return any(phrase.matches(body) is not None for body in bodies(conn, rowids).values())


def index_rows(conn: driver.Connection, rowids: list[int]) -> None:
    """Index these rows of search_index (as they are now)."""
    for rowid, body, scope in main_index_rows(conn, rowids):
        index_row(conn, rowid, body, scope)


def unindex_rows(conn: driver.Connection, rowids: list[int]) -> None:
    """Remove these rows, while search_index still holds them. The table keeps no text, so
    FTS5 is told the terms it indexed, made again from the main index's row: that lets
    secure-delete remove them from its pages rather than leave them behind a tombstone
    (erased words must not stay in the file)."""
    conn.executemany(
        f"INSERT INTO {PAIRS_TABLE} ({PAIRS_TABLE}, rowid, terms) VALUES ('delete', ?, ?)",
        [(rowid, pair_terms(body, scope)) for rowid, body, scope in main_index_rows(conn, rowids)],
    )


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class PhraseQuery:
    """A query whose every included term is a phrase of two or more tokens: searched
    through the phrase index."""

    included: tuple[tuple[str, ...], ...]
    excluded: tuple[tuple[str, ...], ...]
    text: str
    """The query's FTS5 expression (for rows whose text is not ASCII)."""

    @property
    def exact(self) -> bool:
        """Whether the pairs alone find exactly the rows that match."""
        return not self.excluded and all(len(seq) == 2 for seq in self.included)

    def pairs_expression(self) -> str:
        pairs = dict.fromkeys(p for seq in self.included for p in pairs_of(list(seq)))
        return " AND ".join(_quote(p) for p in pairs)

    def matches(self, body: str) -> int | None:
        """How many times (overlapping matches as one, as FTS5's highlight() marks them)
        the row matches the query, or None when it does not."""
        if not body.isascii():
            marked = _fts5_marked(self.text, body)
            return None if marked is None else marked.count(MARK_OPEN)
        instances = self._instances(tokenizer.tokens(body))
        return None if instances is None else len(_coalesced(instances))

    def marked(self, body: str) -> str | None:
        """`body` with each match marked as FTS5's highlight() marks it (overlapping
        matches as one), or None when the row does not match the query."""
        found = tokenizer.spans(body)
        if found is None:
            return _fts5_marked(self.text, body)
        stems, spans = found
        instances = self._instances(stems)
        if instances is None:
            return None
        out, offset = [], 0
        for first, last in _coalesced(instances):
            start, end = spans[first][0], spans[last][1]
            out += [body[offset:start], MARK_OPEN, body[start:end], MARK_CLOSE]
            offset = end
        out.append(body[offset:])
        return "".join(out)

    def _instances(self, stems: list[str]) -> list[tuple[int, int]] | None:
        """(first, last) token of every match of an included phrase; None when one of them
        is missing or an excluded term is there."""
        instances: list[tuple[int, int]] = []
        for seq in self.included:
            found = _occurrences(stems, seq)
            if not found:
                return None
            instances += ((i, i + len(seq) - 1) for i in found)
        if any(_occurrences(stems, seq) for seq in self.excluded):
            return None
        return instances


def phrase_query(query: SearchQuery, text: str) -> PhraseQuery | None:
    """The query for the phrase index, or None when it needs the main index: a term to
    find that is a single token, or a prefix anywhere. `text`: its FTS5 expression."""
    included, excluded = [], []
    for term in query.terms:
        if term.kind is TermKind.PREFIX:
            return None
        seq = tuple(tokenizer.tokens(" ".join(term.words)))
        if term.excluded:
            if seq:
                excluded.append(seq)
        elif len(seq) < 2:
            return None
        else:
            included.append(seq)
    return PhraseQuery(tuple(included), tuple(excluded), text)


def _occurrences(stems: list[str], seq: tuple[str, ...]) -> list[int]:
    n, first, rest = len(seq), seq[0], list(seq[1:])
    found: list[int] = []
    i = -1
    while True:
        try:
            i = stems.index(first, i + 1)
        except ValueError:
            return found
        if stems[i + 1 : i + n] == rest:
            found.append(i)


def _coalesced(instances: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(instances):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _fts5_marked(text: str, body: str) -> str | None:
    conn = tokenizer.scratch_connection()
    conn.execute("BEGIN")
    try:
        conn.execute("INSERT INTO tokenized (rowid, body) VALUES (1, ?)", (body,))
        row = conn.execute(
            f"SELECT highlight(tokenized, 0, '{MARK_OPEN}', '{MARK_CLOSE}') FROM tokenized"
            " WHERE tokenized MATCH ?",
            (text,),
        ).fetchone()
    finally:
        conn.execute("ROLLBACK")
    return None if row is None else row[0]
