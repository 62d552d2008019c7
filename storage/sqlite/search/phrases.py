"""The phrase index: which tokens follow one another in each row of the search index.

FTS5 finds a phrase by reading the positions of every row that holds all of its words.
For a phrase of common words over a whole entity that is most of the entity's rows, even
when the phrase itself is rare (tens of milliseconds to seconds at millions of turns). The
table `search_pairs` holds, for every row of `search_index` (same rowid), each pair of
adjacent tokens as one term ("printer_jam") beside the row's scope tokens, without
positions (detail=none) and without a copy of the text (contentless). A phrase of n tokens
then finds its rows as the n-1 pairs ANDed: exactly the phrase's rows for two tokens, a
small superset for more, which the rows' own tokens settle (`PhraseQuery.matches`).
A word of Chinese or Japanese is such a phrase: the run of its pairs of characters.

Pair and scope terms cannot meet: scope tokens are digits, pairs always hold a "_",
which no token of domain/words.py holds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ....domain.expansion import IndexQuery
from ....domain.query import TermKind
from .. import driver

PAIRS_TABLE = "search_pairs"


def pairs_of(tokens: list[str]) -> list[str]:
    return list(dict.fromkeys(map("_".join, itertools.pairwise(tokens))))


def pair_terms(body: str, scope: str) -> str:
    """The `terms` of a row of search_pairs: the pairs of its tokens (`body`, the main
    index's space-separated tokens) and its scope tokens."""
    pairs = pairs_of(body.split())
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
    """The indexed tokens of these rows of search_index."""
    return {rowid: body for rowid, body, _ in main_index_rows(conn, rowids)}


def any_matches(conn: driver.Connection, phrase: PhraseQuery, rowids: list[int]) -> bool:
    """Whether any of these rows of search_index matches the phrase query."""
    return any(phrase.matches(body) for body in bodies(conn, rowids).values())


def index_rows(conn: driver.Connection, rowids: list[int]) -> None:
    """Index these rows of search_index (as they are now)."""
    for rowid, body, scope in main_index_rows(conn, rowids):
        index_row(conn, rowid, body, scope)


def unindex_rows(conn: driver.Connection, rowids: list[int]) -> None:
    """Remove these rows, while search_index still holds them."""
    unindex_found(conn, main_index_rows(conn, rowids))


def unindex_found(conn: driver.Connection, rows: list[tuple[int, str, str]]) -> None:
    """Remove these rows ((rowid, body, scope) of the main index). The table keeps no
    text, so FTS5 is told the terms it indexed, made again from the main index's row:
    that lets secure-delete remove them from its pages rather than leave them behind a
    tombstone (erased words must not stay in the file)."""
    conn.executemany(
        f"INSERT INTO {PAIRS_TABLE} ({PAIRS_TABLE}, rowid, terms) VALUES ('delete', ?, ?)",
        [(rowid, pair_terms(body, scope)) for rowid, body, scope in rows],
    )


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class PhraseQuery:
    """A query whose every included term is a phrase of two or more tokens: searched
    through the phrase index."""

    query: IndexQuery

    @property
    def exact(self) -> bool:
        """Whether the pairs alone find exactly the rows that match."""
        return not self.query.excluded and all(len(t.words) == 2 for t in self.query.required)

    def pairs_expression(self) -> str:
        pairs = dict.fromkeys(p for t in self.query.required for p in pairs_of(list(t.words)))
        return " AND ".join(_quote(p) for p in pairs)

    def matches(self, body: str) -> bool:
        """Whether the row (its indexed tokens) matches this step of the query."""
        return self.query.in_step(body.split())


def phrase_query(query: IndexQuery) -> PhraseQuery | None:
    """The query for the phrase index, or None when the step needs the main index: a
    term to find that is a single token, or a prefix anywhere."""
    if any(t.kind is TermKind.PREFIX for t in query.excluded):
        return None
    if all(t.kind is TermKind.PHRASE and len(t.words) >= 2 for t in query.required):
        return PhraseQuery(query)
    return None
