"""GraphQL types of what retention and erasure report."""

from __future__ import annotations

from datetime import datetime

import strawberry


@strawberry.type(
    description="What retention removed (or, in a dry run, would remove) of one chat app."
)
class ChatAppRetention:
    chat_app_id: strawberry.ID
    removed: int
    turns: int


@strawberry.type(description="Sessions past their retention, removed for good with their turns.")
class RetentionReport:
    dry_run: bool
    removed: int
    turns: int
    chat_apps: list[ChatAppRetention]


@strawberry.type(
    description="What eraseUserData removed of one person of the caller's entity, in any "
    "session they took part in. "
    "Audit events stay, with their personal content removed; `auditEventId` is the "
    "user.erased event that records this erasure."
)
class ErasureReport:
    user_id: strawberry.ID
    erased_at: datetime
    audit_event_id: strawberry.ID
    sessions: int = strawberry.field(description="Sessions they owned, deleted.")
    session_turns: int = strawberry.field(description="Turns those sessions held.")
    authored_turns: int = strawberry.field(
        description="Their turns in other people's sessions, emptied in place."
    )
    feedback: int = strawberry.field(description="Turns that lost their feedback.")
    pins: int
    shares: int = strawberry.field(description="Shares granted to them, removed.")
    link_visits: int = strawberry.field(description="Share links they had opened.")
    participations: int = strawberry.field(
        description="Other sessions that no longer list them as a participant."
    )
    titles: int = strawberry.field(
        description="Other sessions whose generated title was taken back, as it may have been "
        "made from their words: made again from the turns left."
    )
    audit_events: int = strawberry.field(
        description="Audit events whose details lost their personal content."
    )
