"""Opaque cursors. Clients pass them back unchanged; anything else is a coded error."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from .errors import InvalidInput
from .models import KeysetCursor, SessionCursor
from .timecodec import from_micros, to_micros

MAX_PAGE_SIZE = 100
_MAX_SQL_INTEGER = 2**63
# The range a datetime can hold, as microseconds since the epoch.
_MIN_MICROS = -62_135_596_800_000_000
_MAX_MICROS = 253_402_300_799_999_999


def page_size(requested: int | None, default: int) -> int:
    size = default if requested is None else requested
    if size < 1 or size > MAX_PAGE_SIZE:
        raise InvalidInput(f"Page size must be between 1 and {MAX_PAGE_SIZE}, got {size}.")
    return size


def encode_cursor(kind: str, payload: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([kind, *payload])).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidInput(f"The cursor {cursor!r} is not one this server handed out.") from exc
    if not isinstance(decoded, list) or not decoded or decoded[0] != kind:
        raise InvalidInput(f"The cursor {cursor!r} is not one this server handed out.")
    return decoded[1:]


def encode_session_cursor(cursor: SessionCursor) -> str:
    return encode_cursor("s", [to_micros(cursor.last_activity_at), cursor.session_id])


def decode_session_cursor(cursor: str) -> SessionCursor:
    payload = decode_cursor("s", cursor)
    match payload:
        case [int(micros), str(session_id)] if _MIN_MICROS <= micros <= _MAX_MICROS:
            return SessionCursor(from_micros(micros), session_id)
    raise InvalidInput(f"The cursor {cursor!r} is not one this server handed out.")


def encode_keyset_cursor(kind: str, cursor: KeysetCursor) -> str:
    return encode_cursor(kind, [to_micros(cursor.at), cursor.id])


def decode_keyset_cursor(kind: str, cursor: str) -> KeysetCursor:
    payload = decode_cursor(kind, cursor)
    match payload:
        case [int(micros), str(row_id)] if _MIN_MICROS <= micros <= _MAX_MICROS:
            return KeysetCursor(from_micros(micros), row_id)
    raise InvalidInput(f"The cursor {cursor!r} is not one this server handed out.")


def encode_turn_cursor(seq: int) -> str:
    return encode_cursor("t", [seq])


def decode_turn_cursor(cursor: str) -> int:
    payload = decode_cursor("t", cursor)
    match payload:
        case [int(seq)] if 0 <= seq < _MAX_SQL_INTEGER:
            return seq
    raise InvalidInput(f"The cursor {cursor!r} is not one this server handed out.")
