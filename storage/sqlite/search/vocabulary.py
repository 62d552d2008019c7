"""The vocabulary of the search index: how many rows hold each word (search_words), and
each word's stem in the language of the rows it came from (search_stems), kept in the
same transaction as the rows. A query's words find their other forms here
(domain/expansion.py). A word no row holds any more leaves both tables, with its stems:
what an erasure removed from the index is not left behind in the vocabulary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ....domain.analysis import Analysis
from ....domain.expansion import (
    IndexQuery,
    Shape,
    StemKey,
    counted_words,
    expand,
    near_spellings,
    stem_keys,
    typo_shapes,
)
from ....domain.query import SearchQuery
from .. import driver

_CHUNK = 400


def add(conn: driver.Connection, rows: Iterable[Analysis]) -> None:
    """Count the words of rows just indexed, and link their stems."""
    counts: Counter[str] = Counter()
    links: set[tuple[str, str, str]] = set()
    for analysis in rows:
        counts.update(set(analysis.words))
        links |= analysis.links
    conn.executemany(
        "INSERT INTO search_words (word, rows) VALUES (?, ?)"
        " ON CONFLICT (word) DO UPDATE SET rows = rows + excluded.rows",
        counts.items(),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO search_stems (language, stem, word) VALUES (?, ?, ?)", links
    )


def remove(conn: driver.Connection, bodies: Iterable[str]) -> None:
    """Count off the words of rows about to leave the index (their indexed bodies)."""
    counts: Counter[str] = Counter()
    for body in bodies:
        counts.update(set(body.split()))
    if not counts:
        return
    conn.executemany(
        "UPDATE search_words SET rows = rows - ? WHERE word = ?",
        [(n, word) for word, n in counts.items()],
    )
    words = list(counts)
    for start in range(0, len(words), _CHUNK):
        chunk = words[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        gone = [
            (word,)
            for (word,) in conn.execute(
                f"SELECT word FROM search_words WHERE word IN ({marks}) AND rows <= 0", chunk
            )
        ]
        conn.executemany("DELETE FROM search_words WHERE word = ?", gone)
        conn.executemany("DELETE FROM search_stems WHERE word = ?", gone)


def siblings(conn: driver.Connection, keys: Iterable[StemKey]) -> dict[StemKey, list[str]]:
    """The words linked to each (language, stem)."""
    keys = list(keys)
    found: dict[StemKey, list[str]] = {}
    for start in range(0, len(keys), _CHUNK // 2):
        chunk = keys[start : start + _CHUNK // 2]
        values = ", ".join("(?, ?)" for _ in chunk)
        for language, stem, word in conn.execute(
            "SELECT language, stem, word FROM search_stems"
            f" WHERE (language, stem) IN (VALUES {values})",
            [v for key in chunk for v in key],
        ):
            found.setdefault((language, stem), []).append(word)
    return found


def rows_of(conn: driver.Connection, words: Iterable[str]) -> dict[str, int]:
    """How many rows hold each of `words` (those the index holds)."""
    words = list(words)
    found: dict[str, int] = {}
    for start in range(0, len(words), _CHUNK):
        chunk = words[start : start + _CHUNK]
        found.update(
            conn.execute(
                "SELECT word, rows FROM search_words"
                f" WHERE word IN ({', '.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
        )
    return found


def near(conn: driver.Connection, shapes: Iterable[Shape]) -> dict[str, list[tuple[str, int]]]:
    """The near spellings the vocabulary holds of each shape's word."""
    found: dict[str, list[tuple[str, int]]] = {}
    for shape in shapes:
        words = (
            w
            for (w,) in conn.execute(
                "SELECT word FROM search_words"
                " WHERE substr(word, 1, 1) = ? AND length(word) BETWEEN ? AND ?",
                (shape.first, shape.shortest, shape.longest),
            )
        )
        found[shape.word] = near_spellings(shape, words)
    return found


def index_query(conn: driver.Connection, search: SearchQuery) -> IndexQuery:
    """The search with its words' forms, near spellings and row counts."""
    forms = siblings(conn, stem_keys(search))
    spellings = near(conn, typo_shapes(search))
    words = counted_words(expand(search, forms, spellings))
    return expand(search, forms, spellings, rows_of(conn, words))
