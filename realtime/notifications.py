"""What crosses the broker: small notifications that say *that* something changed, never
the content. Followers read the content from the store themselves (turns by seq), which
is what lets them catch up losslessly after missing notifications.

Channels:
    s:<session id>              everything about one session (its live followers)
    u:<entity id>:<user id>     one user's sidebar (sessions created, renamed, shared ...)
    e:<entity id>               sidebars of a whole entity (ENTITY shares)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import structlog

from ..domain.clock import new_id
from ..domain.events import (
    AccessRevoked,
    SessionCreated,
    SessionDeleted,
    SessionEvent,
    SessionUpdated,
    ShareGranted,
    TurnAdded,
    TurnUpdated,
)
from ..domain.models import GranteeKind, Share, Turn
from ..domain.ports import Store

log = structlog.get_logger("sessionhub.realtime")


class Kind(enum.StrEnum):
    TURN_ADDED = "turn_added"
    TURN_UPDATED = "turn_updated"
    SESSION_CREATED = "session_created"
    SESSION_UPDATED = "session_updated"
    SESSION_DELETED = "session_deleted"
    SHARE_GRANTED = "share_granted"
    ACCESS_REVOKED = "access_revoked"


@dataclass(frozen=True, slots=True)
class Notification:
    """One domain event, as told on every channel it concerns (one `id` for all of them,
    so that a follower reached on two channels acts once)."""

    id: str
    kind: Kind
    session_id: str
    entity_id: str | None = None
    owner_id: str | None = None
    seq: int | None = None
    turn_id: str | None = None
    share_id: str | None = None
    turn: Turn | None = field(default=None, compare=False, repr=False)
    """The committed turn itself, on the publishing instance only (never serialised):
    its own followers need not read it back from the store."""

    def to_json(self) -> bytes:
        fields = {
            "id": self.id,
            "kind": self.kind.value,
            "session": self.session_id,
            "entity": self.entity_id,
            "owner": self.owner_id,
            "seq": self.seq,
            "turn": self.turn_id,
            "share": self.share_id,
        }
        return orjson.dumps({k: v for k, v in fields.items() if v is not None})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Notification:
        """Raises ValueError on anything that is not a notification."""
        try:
            data = orjson.loads(raw)
            return cls(
                id=str(data["id"]),
                kind=Kind(data["kind"]),
                session_id=str(data["session"]),
                entity_id=data.get("entity"),
                owner_id=data.get("owner"),
                seq=int(data["seq"]) if data.get("seq") is not None else None,
                turn_id=data.get("turn"),
                share_id=data.get("share"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"not a notification: {exc}") from exc


def session_channel(session_id: str) -> str:
    return f"s:{session_id}"


def user_channel(entity_id: str, user_id: str) -> str:
    return f"u:{entity_id}:{user_id}"


def entity_channel(entity_id: str) -> str:
    return f"e:{entity_id}"


def _grantee_channels(shares: Iterable[Share]) -> list[str]:
    channels = []
    for share in shares:
        if share.grantee_kind is GranteeKind.ENTITY:
            channels.append(entity_channel(share.entity_id))
        elif share.grantee_user_id and share.grantee_entity_id:
            channels.append(user_channel(share.grantee_entity_id, share.grantee_user_id))
        # LINK shares name nobody: whoever opened one learns of changes by asking.
    return channels


class Router:
    """Which channels hear of a domain event. Reads the session's shares for a session
    update, so that the sidebars of those it is shared with follow renames."""

    def __init__(self, store: Store | None) -> None:
        self._store = store

    async def route(self, event: SessionEvent) -> list[tuple[str, Notification]]:
        match event:
            case TurnAdded(turn=turn) | TurnUpdated(turn=turn):
                kind = Kind.TURN_ADDED if isinstance(event, TurnAdded) else Kind.TURN_UPDATED
                note = Notification(
                    new_id(), kind, turn.session_id, seq=turn.seq, turn_id=turn.id, turn=turn
                )
                return [(session_channel(turn.session_id), note)]
            case SessionCreated(session=s):
                note = Notification(new_id(), Kind.SESSION_CREATED, s.id, s.entity_id, s.owner_id)
                return [(user_channel(s.entity_id, s.owner_id), note)]
            case SessionUpdated(session=s):
                note = Notification(new_id(), Kind.SESSION_UPDATED, s.id, s.entity_id, s.owner_id)
                channels = [session_channel(s.id), user_channel(s.entity_id, s.owner_id)]
                channels += _grantee_channels(await self._live_shares(s.id))
                return [(c, note) for c in dict.fromkeys(channels)]
            case SessionDeleted():
                note = Notification(
                    new_id(),
                    Kind.SESSION_DELETED,
                    event.session_id,
                    event.entity_id,
                    event.owner_id,
                )
                channels = [
                    session_channel(event.session_id),
                    user_channel(event.entity_id, event.owner_id),
                    *_grantee_channels(event.shares),
                ]
                return [(c, note) for c in dict.fromkeys(channels)]
            case ShareGranted(share=share) | AccessRevoked(share=share):
                granted = isinstance(event, ShareGranted)
                note = Notification(
                    new_id(),
                    Kind.SHARE_GRANTED if granted else Kind.ACCESS_REVOKED,
                    share.session_id,
                    share.entity_id,
                    share_id=share.id,
                )
                channels = _grantee_channels([share])
                if not granted:
                    channels.insert(0, session_channel(share.session_id))
                return [(c, note) for c in dict.fromkeys(channels)]
        return []

    async def _live_shares(self, session_id: str) -> list[Share]:
        if self._store is None:
            return []
        try:
            shares = await self._store.list_shares(session_id)
        except Exception:
            # The sidebars of grantees miss one rename; the session's followers do not.
            log.warning("realtime.route_shares_failed", session_id=session_id, exc_info=True)
            return []
        return [s for s in shares if s.revoked_at is None]
