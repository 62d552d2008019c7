"""Scalars with the rules this API keeps: times always carry their UTC offset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry


def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("Give a time as an ISO 8601 string, e.g. 2026-01-31T09:00:00Z.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an ISO 8601 time.") from exc
    if parsed.tzinfo is None:
        # A time without an offset names no instant; guessing would move it by hours.
        raise ValueError(f"{value!r} has no UTC offset; add one, e.g. 2026-01-31T09:00:00Z.")
    return parsed.astimezone(UTC)


def _serialize_datetime(value: datetime) -> str:
    return value.isoformat()


AWARE_DATETIME = strawberry.scalar(
    name="DateTime",
    description="An ISO 8601 date and time with its UTC offset.",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
)
