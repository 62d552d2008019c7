"""Operations on many sessions at once: each id gets its own outcome, and one bad id
never stops the others."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import InvalidInput

MAX_BULK_IDS = 1000


class ItemStatus(enum.StrEnum):
    DONE = "DONE"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    REJECTED = "REJECTED"
    """Visible and allowed, but the change would break a limit (the message says which)."""


@dataclass(frozen=True, slots=True)
class ItemResult:
    id: str
    status: ItemStatus
    message: str | None = None


def distinct_ids(ids: list[str]) -> list[str]:
    """The ids in order, each once; at most MAX_BULK_IDS of them."""
    if not ids:
        raise InvalidInput("Give at least one session id.")
    unique = list(dict.fromkeys(ids))
    if len(unique) > MAX_BULK_IDS:
        raise InvalidInput(f"At most {MAX_BULK_IDS} ids at a time; got {len(unique)}.")
    return unique
