"""The Python tokenizer and phrase matcher against FTS5 itself: the phrase index is only
as good as their agreement with the search index's own tokens and highlight()."""

from __future__ import annotations

import random
import re
import sqlite3

import pytest

from sessionhub.domain.query import parse_query
from sessionhub.storage.sqlite import driver
from sessionhub.storage.sqlite.search import phrases, tokenizer
from sessionhub.storage.sqlite.search.query import text_expression

# Every suffix the stemmer has a rule for, and a few it meets on the way to them.
_SUFFIXES = """
    s es ies sses ss ed eed ing y ly e ll l ational tional enci anci izer logi bli alli
    entli eli ousli ization ation ator alism iveness fulness ousness aliti iviti biliti
    ical ness icate iciti ful ative alize al ance ence er ic able ible ant ement ment ent
    sion tion ion ou ism ate iti ous ive ize at bl iz ated ating izing bled hopping yed
    ying ays
"""
SUFFIXES = _SUFFIXES.split()


def _fts5(rows: list[str]) -> sqlite3.Connection:
    conn = driver.connect_memory()
    conn.execute(
        f"CREATE VIRTUAL TABLE t USING fts5(body, tokenize = '{tokenizer.FTS5_TOKENIZER}')"
    )
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
    conn.executemany("INSERT INTO t (rowid, body) VALUES (?, ?)", list(enumerate(rows, 1)))
    return conn


def _fts5_tokens(conn: sqlite3.Connection) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for doc, term in conn.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
        found.setdefault(doc, []).append(term)
    return found


def _words(rng: random.Random, count: int) -> list[str]:
    """Stems with every suffix the stemmer knows (and pairs of them), random strings, and
    the lengths where FTS5 stops stemming."""
    words = {"y", "yy", "ay", "eed", "ies", "sses", "a" * 70, "b" * 64, "c" * 65, "x86", "1st"}
    for _ in range(count):
        base = "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyz" if rng.random() < 0.3 else "bcdlmnprstaeiouy")
            for _ in range(rng.randint(0, 7))
        )
        word = base + rng.choice(SUFFIXES)
        if rng.random() < 0.2:
            word += rng.choice(SUFFIXES)
        words.add(word)
        words.add(
            "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 12)))
        )
    return sorted(words)


def test_porter_stems_as_fts5_does() -> None:
    words = _words(random.Random(7), 40_000)
    fts5 = _fts5_tokens(_fts5(words))
    wrong = [
        (w, fts5[i], tokenizer.porter_stem(w))
        for i, w in enumerate(words, 1)
        if fts5[i] != [tokenizer.porter_stem(w)]
    ]
    assert len(words) > 60_000
    assert wrong == []


def _texts(rng: random.Random, count: int) -> list[str]:
    words = _words(rng, 300)
    pieces = [*words, "Printer", "JAMMED", "e-mail", "node.js", "x_y", "C++", "3.14", "it's"]
    separators = [" ", " ", " ", ", ", ". ", "\n\n", " (", ") ", ' "', "\t", "/", "_", "—", "…"]
    return [
        "".join(rng.choice(pieces) + rng.choice(separators) for _ in range(rng.randint(1, 60)))
        for _ in range(count)
    ]


def test_text_tokens_match_fts5_ascii_and_not() -> None:
    texts = _texts(random.Random(11), 400)
    texts += [
        "Café naïve résumé — ÉCOLE über straße",
        "Привет мир, 你好世界 and emoji 👍🏽 ok",
        "İstanbul ǅemal ﬁle ‘quoted’ x²",
    ]
    fts5 = _fts5_tokens(_fts5(texts))
    for i, text in enumerate(texts, 1):
        assert tokenizer.tokens(text) == fts5.get(i, []), text


def test_words_learned_in_bulk_or_one_by_one_stem_as_fts5_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """New words come in bulk (a server's first searches, `learn` at start: FTS5 stems
    them in one call) or a few at a time (porter_stem): the cache holds FTS5's stems both
    ways."""
    monkeypatch.setattr(tokenizer, "_STEMS", {})
    words = _words(random.Random(13), 5_000)
    few_new = [*words[:30], "printers", "jammed"]
    texts = [" ".join(words), ", ".join(reversed(words)), " ".join(few_new)]
    fts5 = _fts5_tokens(_fts5(texts))
    assert tokenizer.learn(texts[:1]) == len(words)
    for i, text in enumerate(texts, 1):
        assert tokenizer.tokens(text) == fts5[i]
    assert tokenizer._STEMS["printers"] == "printer"


PHRASE_QUERIES = [
    '"printer jammed"',
    '"e-mail" "node js"',
    '"printer jammed" -"node js"',
    '"it s"',
    'x_y "c 3"',
]


def test_phrase_marks_match_fts5_highlight() -> None:
    rng = random.Random(5)
    texts = _texts(rng, 600)
    texts += ["Das Café: printer jammed, printer JAMMED", "printer printer jammed jammed"]
    conn = _fts5(texts)
    runs = [re.findall(r"[A-Za-z]+", t) for t in texts]
    words = sorted({w for run in runs for w in run})
    queries = [
        *PHRASE_QUERIES,
        *(f'"{rng.choice(words)} {rng.choice(words)}"' for _ in range(40)),
        *(f'"{" ".join(run[:3])}"' for run in runs[:150] if len(run) > 2),
        *(f'"{run[1]} {run[2]}" -{run[0]}' for run in runs[40:60] if len(run) > 2),
    ]
    checked = 0
    for raw in queries:
        query = parse_query(raw)
        text = text_expression(query)
        phrase = phrases.phrase_query(query, text)
        assert phrase is not None, raw
        expected = dict(
            conn.execute(
                "SELECT rowid, highlight(t, 0, ?, ?) FROM t WHERE t MATCH ?",
                (phrases.MARK_OPEN, phrases.MARK_CLOSE, text),
            ).fetchall()
        )
        for i, body in enumerate(texts, 1):
            assert phrase.marked(body) == expected.get(i), (raw, body)
            marks = None if i not in expected else expected[i].count(phrases.MARK_OPEN)
            assert phrase.matches(body) == marks, (raw, body)
        checked += len(expected)
    assert checked > 100


def test_pairs_find_every_row_fts5_finds_for_a_phrase() -> None:
    texts = _texts(random.Random(13), 800)
    conn = _fts5(texts)
    conn.execute(
        "CREATE VIRTUAL TABLE p USING fts5(terms, content = '', detail = none,"
        " tokenize = \"ascii tokenchars '_'\")"
    )
    conn.executemany(
        "INSERT INTO p (rowid, terms) VALUES (?, ?)",
        [(i, phrases.pair_terms(t, "12345")) for i, t in enumerate(texts, 1)],
    )
    for raw in [*PHRASE_QUERIES, '"printer jammed e"', '"mail node js"']:
        query = parse_query(raw)
        text = text_expression(query)
        phrase = phrases.phrase_query(query, text)
        assert phrase is not None
        exact = {r for (r,) in conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (text,))}
        found = {
            r
            for (r,) in conn.execute(
                "SELECT rowid FROM p WHERE p MATCH ?", (phrase.pairs_expression(),)
            )
        }
        assert exact <= found, raw
        if phrase.exact:
            assert found == exact, raw
        assert {i for i in found if phrase.marked(texts[i - 1]) is not None} == exact


@pytest.mark.parametrize(
    ("raw", "uses_pairs"),
    [
        ('"printer jammed"', True),
        ("e-mail", True),
        ('"printer jammed" -toner', True),
        ('"printer jammed" toner', False),
        ('"printer jammed" -ton*', False),
        ("printer", False),
    ],
)
def test_which_queries_the_phrase_index_answers(raw: str, uses_pairs: bool) -> None:
    query = parse_query(raw)
    assert (phrases.phrase_query(query, text_expression(query)) is not None) is uses_pairs
