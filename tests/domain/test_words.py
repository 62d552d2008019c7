"""Tokens as people of every script expect them (domain/words.py), and queries cut the
same way (domain/query.py)."""

from __future__ import annotations

import pytest

from sessionhub.domain.errors import InvalidInput
from sessionhub.domain.languages import detect, stem
from sessionhub.domain.query import TermKind, parse_query
from sessionhub.domain.words import Kind, fold, tokens, words


def test_indic_vowel_signs_stay_inside_their_word() -> None:
    assert words("हिन्दी में दिन और दान") == ["हिन्दी", "में", "दिन", "और", "दान"]
    assert words("தமிழ் மொழி") == ["தமிழ்", "மொழி"]
    assert words("বাংলা ভাষা") == ["বাংলা", "ভাষা"]


def test_scripts_without_spaces_become_overlapping_pairs() -> None:
    assert words("北京的图书馆") == ["北京", "京的", "的图", "图书", "书馆"]
    assert words("コンピュータ") == ["コン", "ンピ", "ピュ", "ュー", "ータ"]
    assert words("ภาษาไทย") == ["ภา", "าษ", "ษา", "าไ", "ไท", "ทย"]
    assert words("APIを使う") == ["api", "を使", "使う"]
    assert words("猫") == ["猫"]


@pytest.mark.parametrize(
    ("written", "folded"),
    [
        ("Straße", "strasse"),
        ("ёлка", "елка"),
        ("ISIK", "isik"),
        ("ışık", "isik"),
        ("İstanbul", "istanbul"),
        ("الكِتَابَ", "الكتاب"),
        ("أحمد", "احمد"),
        ("שָׁלוֹם", "שלום"),
        ("Crème Brûlée", "creme brulee"),
        ("Ｆｕｌｌ", "full"),
        ("ΣΟΦΟΣ", "σοφοσ"),
    ],
)
def test_folding_makes_alike_what_readers_take_as_one(written: str, folded: str) -> None:
    assert " ".join(words(written)) == folded


def test_symbols_people_search_for_are_tokens() -> None:
    assert words("C++ and C# and F#, not issue#42") == [
        "c++", "and", "c#", "and", "f#", "not", "issue", "42",
    ]  # fmt: skip
    assert words("ok 👍🏽 🚀 ❤️") == ["ok", "👍", "🚀", "❤"]
    assert [t.kind for t in tokens("go 🚀 北京")] == [Kind.WORD, Kind.EMOJI, Kind.PAIR]


def test_every_token_lies_where_its_text_is() -> None:
    text = "Die Häuser 🚀 in 東京, हिन्दी C# ok"
    for token in tokens(text):
        assert fold(text[token.start : token.end]).replace("\ufe0f", "") == token.word


def test_queries_are_cut_as_the_text_is() -> None:
    assert parse_query("🚀").terms[0].words == ("🚀",)
    assert parse_query("C++").terms[0].words != parse_query("C#").terms[0].words
    (library,) = parse_query("图书馆").terms
    assert library.kind is TermKind.PHRASE and library.words == ("图书", "书馆")
    assert parse_query("use*").terms[0].kind is TermKind.PREFIX
    assert parse_query("书").terms[0].kind is TermKind.PREFIX
    excluded = parse_query("printer -jammed").excluded[0]
    assert excluded.words == ("jammed",)
    with pytest.raises(InvalidInput):
        parse_query("!!! ???")


def test_stems_follow_the_language_of_the_text() -> None:
    assert detect("Die Häuser in der Straße sind sehr alt") == "de"
    assert detect("Я читаю интересные книги каждый день") == "ru"
    assert detect("ok") == ""  # too short to tell
    assert detect("ok", ["it"]) == "it"  # the chat app's only language
    assert stem("Häuser", "de") == stem("Haus", "de") == "haus"
    assert stem("книги", "ru") == stem("книга", "ru")
    assert stem("informações", "pt") == stem("informação", "pt")
    assert stem("libri", "it") == stem("libro", "it")
