"""What happened to a session, published after the store has committed it."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Session, Share, Turn


@dataclass(frozen=True, slots=True)
class TurnAdded:
    turn: Turn


@dataclass(frozen=True, slots=True)
class TurnUpdated:
    turn: Turn


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    session: Session


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session: Session


@dataclass(frozen=True, slots=True)
class SessionDeleted:
    session_id: str
    entity_id: str
    owner_id: str
    shares: tuple[Share, ...] = ()
    """The live shares it had, so that the grantees' sidebars hear of it too."""


@dataclass(frozen=True, slots=True)
class ShareGranted:
    """A share was made: its grantees may now read the session."""

    share: Share


@dataclass(frozen=True, slots=True)
class AccessRevoked:
    """A share ended (revoked or expired): whoever it alone let in must be let go."""

    share: Share


SessionEvent = (
    TurnAdded
    | TurnUpdated
    | SessionUpdated
    | SessionCreated
    | SessionDeleted
    | ShareGranted
    | AccessRevoked
)
