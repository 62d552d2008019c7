"""What subscriptions send. Every field here is the same for every reader of the session
of one entity (nothing per caller, such as `Session.pinned`; people of a third entity are
shown by what the reader's entity may know of them), so that one execution of a
subscription's selection serves all its subscribers of that entity."""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry

from ..domain import models
from .types import SessionFacts, Turn, shared_session_fields


@strawberry.type(
    description="A session as every reader sees it alike: no per-caller fields such as `pinned`."
)
class SessionInfo(SessionFacts):
    @classmethod
    def of(cls, s: models.Session) -> SessionInfo:
        return cls(**shared_session_fields(s))


@strawberry.type(name="TurnAdded", description="A new turn, replayed from the store or live.")
class TurnAddedEvent:
    session_id: strawberry.ID
    seq: int = strawberry.field(description="The turn's seq: resume with afterSeq set to it.")
    turn: Turn


@strawberry.type(name="TurnUpdated", description="A turn got a verification or feedback.")
class TurnUpdatedEvent:
    session_id: strawberry.ID
    seq: int
    turn: Turn


@strawberry.type(name="SessionUpdated", description="Title, archive state or other shared facts.")
class SessionUpdatedEvent:
    session_id: strawberry.ID
    session: SessionInfo


@strawberry.type(
    name="AccessRevoked",
    description="The caller may no longer read the session; the subscription ends after it.",
)
class AccessRevokedEvent:
    session_id: strawberry.ID
    reason: str


@strawberry.type(
    name="SessionDeleted", description="The session is gone; the subscription ends after it."
)
class SessionDeletedEvent:
    session_id: strawberry.ID


SessionEvent = Annotated[
    TurnAddedEvent
    | TurnUpdatedEvent
    | SessionUpdatedEvent
    | AccessRevokedEvent
    | SessionDeletedEvent,
    strawberry.union("SessionEvent", description="What `sessionEvents` sends."),
]


@strawberry.enum(description="What happened to a session in the caller's sidebar.")
class SessionListChange(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    SHARED = "SHARED"
    UNSHARED = "UNSHARED"
    DELETED = "DELETED"
    RESYNC = strawberry.enum_value(
        "RESYNC",
        description="Changes may have been missed (the server lost its broker for a while): "
        "fetch the lists again.",
    )


@strawberry.type(description="One change to the caller's sessions or to those shared with them.")
class SessionListEvent:
    change: SessionListChange
    session_id: strawberry.ID | None = strawberry.field(description="Null only for RESYNC.")
    session: SessionInfo | None = strawberry.field(
        description="The session now; null for DELETED, UNSHARED and RESYNC."
    )
