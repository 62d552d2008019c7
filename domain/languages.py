"""The language of a text, and the stems of its words in that language.

A row of the search index is stemmed in one language: the chat app's, when it names one;
else the one py3langid finds among those the chat app names (or among every language
with a Snowball stemmer). A query is stemmed in every language the index may hold, and
the vocabulary tells which of its words share a stem in which language
(`domain/vocabulary.py`): a German row's "Häuser" and the query "Haus" meet through the
German stem "haus", whatever language the query was typed in.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Collection, Iterable, Mapping

import Stemmer
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from .words import fold

# ISO 639-1 codes of the languages with a Snowball stemmer, and the stemmer's name.
STEMMERS: dict[str, str] = {
    "ar": "arabic",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "eo": "esperanto",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
}
NO_LANGUAGE = ""
"""A row in no stemmed language: its words are their own stems."""

Languages = Mapping[str, tuple[str, ...]]
"""The languages each chat app's chats are in (its `languages` setting), by chat app id;
an app not named is detected among all."""
NO_CONFIGURED_LANGUAGES: Languages = {}

# Below this many letters a guess is noise ("ok" is Afrikaans to the detector); the
# first this many characters tell the language as well as a whole answer does.
_DETECT_MIN_LETTERS = 12
DETECTED_CHARS = 600


class _Detector:
    """py3langid's model, loaded on first use (about half a second) and shared; a
    restricted copy of it per set of languages asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_languages: dict[frozenset[str], LanguageIdentifier] = {}

    def classify(self, text: str, languages: frozenset[str]) -> str:
        identifier = self._by_languages.get(languages)
        if identifier is None:
            identifier = self._restricted(languages)
        return str(identifier.classify(text)[0])

    def _restricted(self, languages: frozenset[str]) -> LanguageIdentifier:
        with self._lock:
            identifier = self._by_languages.get(languages)
            if identifier is not None:
                return identifier
            full = self._by_languages.get(_ALL)
            if full is None:
                full = LanguageIdentifier.from_model_file(MODEL_FILE)
            identifier = copy.copy(full)
            identifier.set_languages(sorted(languages & set(full.labels)))
            self._by_languages[languages] = identifier
            return identifier


_DETECTOR = _Detector()
_ALL = frozenset(STEMMERS)


def prepare() -> None:
    """Load the detector's model now rather than on the first text that needs it."""
    _DETECTOR.classify("prepared", _ALL)


def detect(text: str, languages: Collection[str] = ()) -> str:
    """The language `text` is stemmed in: the only one of `languages`, else the detected
    one among them (among every stemmed language when none are named); NO_LANGUAGE when
    the text holds too few letters of a stemmed language to tell."""
    allowed = frozenset(languages) & _ALL if languages else _ALL
    if len(allowed) == 1:
        return next(iter(allowed))
    if not allowed or sum(c.isalpha() for c in text[:400]) < _DETECT_MIN_LETTERS:
        return NO_LANGUAGE
    return _DETECTOR.classify(text[:DETECTED_CHARS], allowed)


_local = threading.local()


def _stemmer(language: str) -> Stemmer.Stemmer:
    # PyStemmer's stemmers keep state between calls: one per thread.
    stemmers: dict[str, Stemmer.Stemmer] | None = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {}
    stemmer = stemmers.get(language)
    if stemmer is None:
        stemmer = stemmers[language] = Stemmer.Stemmer(STEMMERS[language])
    return stemmer


@functools.lru_cache(maxsize=500_000)
def stem(word: str, language: str) -> str:
    """The folded stem of `word` (as written, any case) in `language`; the folded word
    itself in NO_LANGUAGE. Stemmers expect accents, so folding comes after."""
    if language == NO_LANGUAGE:
        return fold(word)
    return fold(_stemmer(language).stemWord(word.lower()))


def stems_in(word: str, languages: Iterable[str]) -> set[tuple[str, str]]:
    """(language, stem) of `word` in each of `languages`, and the word itself taken as a
    stem in each: a query's base form finds the inflected forms that stem to it even where
    the stemmer cuts the base form further (Turkish "kütüphanesinden" stems to
    "kütüphane", "kütüphane" to "kütüpha")."""
    folded = fold(word)
    return {
        key
        for language in languages
        for key in ((language, stem(word, language)), (language, folded))
    }
