"""Whether an optional library (one of the package's extras) is installed here."""

from __future__ import annotations

from importlib.util import find_spec


def installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False
