"""Time and identifiers, injectable so that tests can pin them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import uuid_utils


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def new_id() -> str:
    """A time-sortable id (UUIDv7), so ids created later sort later."""
    return str(uuid_utils.uuid7())
