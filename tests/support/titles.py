"""The offline title generator as the server builds it, for tests that make titles."""

from __future__ import annotations

from sessionhub.adapters.keyphrases import YakeKeyphrases
from sessionhub.adapters.offload import ThreadOffload
from sessionhub.domain.ports import Offload
from sessionhub.domain.titles import KeyphraseTitleGenerator, KeyphraseTitler


def keyphrase_titler(**options: object) -> KeyphraseTitler:
    return KeyphraseTitler(YakeKeyphrases(), **options)  # type: ignore[arg-type]


def keyphrase_titles(offload: Offload | None = None) -> KeyphraseTitleGenerator:
    """Titles made in a thread unless `offload` says otherwise."""
    return KeyphraseTitleGenerator(keyphrase_titler(), offload or ThreadOffload())
