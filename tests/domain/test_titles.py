from __future__ import annotations

from sessionhub.domain.titles import opening_words


def test_opening_words_cut_at_a_word_and_drop_trailing_punctuation() -> None:
    text = "How do I reset the password of my home router, the one from the ISP?"
    title = opening_words(text)
    assert len(title) <= 60
    assert text.startswith(title)
    assert not title.endswith((",", " "))
    assert opening_words("Hello!!!") == "Hello"


def test_one_giant_word_is_cut() -> None:
    assert len(opening_words("x" * 500)) == 60


def test_whitespace_collapses() -> None:
    assert opening_words("  many\n\nlines   here ") == "many lines here"
