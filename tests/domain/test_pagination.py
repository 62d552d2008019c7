from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sessionhub.domain.errors import InvalidInput
from sessionhub.domain.models import SessionCursor
from sessionhub.domain.pagination import (
    decode_session_cursor,
    decode_turn_cursor,
    encode_session_cursor,
    encode_turn_cursor,
    page_size,
)


def test_cursors_round_trip() -> None:
    cursor = SessionCursor(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "abc")
    assert decode_session_cursor(encode_session_cursor(cursor)) == cursor
    assert decode_turn_cursor(encode_turn_cursor(42)) == 42


@pytest.mark.parametrize("garbage", ["", "!!!", "bm90IGpzb24", "WyJzIl0", encode_turn_cursor(3)])
def test_foreign_or_broken_cursors_are_bad_input(garbage: str) -> None:
    with pytest.raises(InvalidInput):
        decode_session_cursor(garbage)


def test_turn_cursor_rejects_session_cursor() -> None:
    with pytest.raises(InvalidInput):
        decode_turn_cursor(encode_session_cursor(SessionCursor(datetime.now(UTC), "x")))


@pytest.mark.parametrize("size", [0, -1, 101])
def test_page_size_bounds(size: int) -> None:
    with pytest.raises(InvalidInput):
        page_size(size, 30)


def test_page_size_default() -> None:
    assert page_size(None, 30) == 30
