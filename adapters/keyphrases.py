"""The `Keyphrases` port (domain/ports.py) by YAKE: statistical, no model, nothing
downloaded. YAKE comes with the `titles` extra; it is imported on first use, as it brings
numpy and networkx, which nothing else at start needs."""

from __future__ import annotations

import threading
from typing import Any

from .installed import installed

_lock = threading.Lock()
_extractors: dict[tuple[str, int, int], Any] = {}


def yake_installed() -> bool:
    return installed("yake")


class YakeKeyphrases:
    """Stateless, hence picklable: the extractors are kept per process."""

    def __call__(self, text: str, *, top: int, max_words: int, language: str) -> list[str]:
        if not text.strip():
            return []
        key = (language, max_words, top)
        with _lock:
            extractor = _extractors.get(key)
            if extractor is None:
                import yake

                extractor = yake.KeywordExtractor(lan=language, n=max_words, top=top)
                _extractors[key] = extractor
            # One extractor serves every thread, one call at a time.
            found = extractor.extract_keywords(text)
        return [phrase for phrase, _ in found]
