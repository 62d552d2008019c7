"""Plain data of the domain: what a session, a turn, a share or an audit event is."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSON = Any


class Role(enum.StrEnum):
    USER = "user"
    ENTITY_ADMIN = "entity-admin"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SERVICE = "service"


class UserType(enum.StrEnum):
    INTERNAL = "INTERNAL"
    EXTERNAL = "EXTERNAL"


class TitleSource(enum.StrEnum):
    PENDING = "PENDING"
    AUTO = "AUTO"
    MANUAL = "MANUAL"


class SessionStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"


class TurnRole(enum.StrEnum):
    USER = "USER"
    ASSISTANT = "ASSISTANT"
    TOOL = "TOOL"
    SYSTEM = "SYSTEM"


class ToolStatus(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class Grade(enum.StrEnum):
    A = "A"
    B = "B"
    C = "C"
    F = "F"


class FeedbackKind(enum.StrEnum):
    THUMBS_UP = "THUMBS_UP"
    THUMBS_DOWN = "THUMBS_DOWN"
    HALLUCINATION = "HALLUCINATION"
    TOOL_FAILURE = "TOOL_FAILURE"
    INCOMPLETE = "INCOMPLETE"
    OFF_TOPIC = "OFF_TOPIC"
    OTHER = "OTHER"


class GranteeKind(enum.StrEnum):
    USER = "USER"
    ENTITY = "ENTITY"
    EXTERNAL = "EXTERNAL"
    LINK = "LINK"


class ShareMode(enum.StrEnum):
    READ = "READ"
    INTERACT = "INTERACT"


@dataclass(frozen=True, slots=True)
class Person:
    """Someone who did something in a session. A user id names a person only within its
    entity: acme's bob and globex's bob are two people. As shown to a viewer, entity_id is
    None for someone of an entity the viewer is not shown (people.py)."""

    entity_id: str | None
    user_id: str


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    entity_id: str
    user_type: UserType = UserType.INTERNAL
    roles: frozenset[Role] = frozenset({Role.USER})
    time_zone: str | None = None

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True, slots=True)
class SessionSettings:
    auto_generate_titles: bool = True
    allow_sharing: bool = False
    allow_external_sharing: bool = False
    allow_pinning: bool = True
    max_session_history: int = 500
    retention_days: int = 90
    agent_turns_from_collaborators: bool = False
    """The entity's own people who interact with a session besides its owner may append
    ASSISTANT and TOOL turns (never SYSTEM); off, only the owner and the entity's service do."""
    languages: tuple[str, ...] = ()
    """The languages the app's chats are in (ISO 639-1 codes of languages with a Snowball
    stemmer): search stems a turn in the only one, or in the one detected among them;
    empty, in the one detected among all (domain/languages.py)."""


@dataclass(frozen=True, slots=True)
class StarterTurn:
    role: TurnRole
    content: str


@dataclass(frozen=True, slots=True)
class SessionTemplate:
    """A ready-made start for a session of one chat app: defined in the chat apps file, or
    by an admin over the API (then held by an `EntityTemplate`)."""

    id: str
    name: str
    description: str = ""
    system_prompt: str | None = None
    variables: JSON = None
    starter_turns: tuple[StarterTurn, ...] = ()


def template_name_key(name: str) -> str:
    """What makes two template names the same name: case and spacing do not count."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True, slots=True)
class EntityTemplate:
    """A session template an admin defined over the API for one chat app. Only the admin's
    entity sees or uses it; the chat apps file's templates are every entity's."""

    entity_id: str
    chat_app_id: str
    template: SessionTemplate
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def id(self) -> str:
        return self.template.id

    @property
    def name_key(self) -> str:
        return template_name_key(self.template.name)


@dataclass(frozen=True, slots=True)
class ChatApp:
    id: str
    name: str
    settings: SessionSettings
    description: str = ""
    templates: tuple[SessionTemplate, ...] = ()

    def template(self, template_id: str) -> SessionTemplate | None:
        return next((t for t in self.templates if t.id == template_id), None)


@dataclass(slots=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost + other.cost,
        )


@dataclass(slots=True)
class Session:
    id: str
    entity_id: str
    chat_app_id: str
    owner_id: str
    title: str | None
    title_source: TitleSource
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    turn_count: int = 0
    archived_at: datetime | None = None
    tags: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    """Users of the session's entity who took part, in the order they first did."""
    status: SessionStatus = SessionStatus.ACTIVE
    template_id: str | None = None
    agent_context: JSON = None
    metadata: JSON = None
    expires_at: datetime | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    external_participants: list[Person] = field(default_factory=list)
    """People of other entities (external grantees) who took part, in the order they
    first did."""
    title_version: int = 0
    """How many times the title changed: a title job stores its title only over the
    version it read (`Store.rename_session`)."""

    @property
    def people(self) -> list[Person]:
        """Everyone who took part: the entity's own users, then the external ones."""
        own = [Person(self.entity_id, user_id) for user_id in self.participants]
        return own + self.external_participants


@dataclass(slots=True)
class ToolInvocation:
    id: str
    name: str
    input: JSON = None
    output: JSON = None
    status: ToolStatus = ToolStatus.SUCCEEDED
    error: str | None = None
    started_at: datetime | None = None
    duration_ms: float | None = None


@dataclass(slots=True)
class Verification:
    grade: Grade
    score: float | None
    notes: str | None
    verified_at: datetime
    verified_by: str
    verified_by_entity_id: str | None = field(kw_only=True)
    """None only as shown to a viewer who may not know the verifier (people.py)."""

    @property
    def verifier(self) -> Person:
        return Person(self.verified_by_entity_id, self.verified_by)


@dataclass(slots=True)
class Feedback:
    """One person's feedback of one kind on a turn (giving it again replaces it)."""

    user_id: str
    kind: FeedbackKind
    comment: str | None
    at: datetime
    entity_id: str | None = field(kw_only=True)
    """The entity of the user who gave it (another than the session's for an external
    grantee; None only as shown to a viewer who may not know them, people.py)."""

    @property
    def given_by(self) -> Person:
        return Person(self.entity_id, self.user_id)


@dataclass(slots=True)
class NewTurn:
    """A turn as the domain hands it to the store, before the store gives it its seq."""

    id: str
    session_id: str
    role: TurnRole
    author_id: str
    content: str
    created_at: datetime
    parts: JSON = None
    tool_invocations: list[ToolInvocation] = field(default_factory=list)
    trace: JSON = None
    insights: JSON = None
    metadata: JSON = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    author_entity_id: str = field(kw_only=True)
    """The author's entity: the session's, or another for an external grantee's turn."""

    @property
    def author(self) -> Person:
        return Person(self.author_entity_id, self.author_id)


@dataclass(frozen=True, slots=True)
class TurnText:
    """What is said in a turn and by whom: what titles are made from."""

    role: TurnRole
    content: str


@dataclass(slots=True)
class Turn:
    id: str
    session_id: str
    seq: int
    role: TurnRole
    author_id: str
    content: str
    created_at: datetime
    parts: JSON = None
    tool_invocations: list[ToolInvocation] = field(default_factory=list)
    trace: JSON = None
    verification: Verification | None = None
    feedback: list[Feedback] = field(default_factory=list)
    insights: JSON = None
    metadata: JSON = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    entity_id: str = field(kw_only=True)
    """The entity of the turn's session."""
    author_entity_id: str | None = field(kw_only=True)
    """The author's entity: `entity_id`, or another for an external grantee's turn (None
    only as shown to a viewer who may not know them, people.py)."""

    @property
    def author(self) -> Person:
        return Person(self.author_entity_id, self.author_id)

    @property
    def external_author(self) -> bool:
        """Written by someone of another entity than the session's."""
        return self.author_entity_id != self.entity_id

    @classmethod
    def numbered(cls, new: NewTurn, seq: int, entity_id: str) -> Turn:
        """`new` as stored as the `seq`th turn of a session of `entity_id`."""
        return cls(
            id=new.id,
            session_id=new.session_id,
            seq=seq,
            role=new.role,
            author_id=new.author_id,
            content=new.content,
            created_at=new.created_at,
            parts=new.parts,
            tool_invocations=list(new.tool_invocations),
            trace=new.trace,
            insights=new.insights,
            metadata=new.metadata,
            usage=new.usage,
            entity_id=entity_id,
            author_entity_id=new.author_entity_id,
        )


@dataclass(slots=True)
class Pin:
    user_id: str
    session_id: str
    pinned_at: datetime


@dataclass(slots=True)
class Share:
    """A grant of one session. Who it names depends on the kind: USER names a user of the
    session's entity, ENTITY the whole entity, EXTERNAL a user of another entity; LINK names
    nobody and grants to whoever opens it with its token (only the token's hash is kept)."""

    id: str
    session_id: str
    entity_id: str
    grantee_kind: GranteeKind
    grantee_entity_id: str | None
    grantee_user_id: str | None
    mode: ShareMode
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    token_hash: str | None = None

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(slots=True)
class AuditEvent:
    id: str
    entity_id: str
    actor_id: str
    action: str
    target: str
    at: datetime
    details: JSON = None


@dataclass(frozen=True, slots=True)
class SessionFilter:
    chat_app_ids: tuple[str, ...] = ()
    archived: bool | None = False
    tag: str | None = None
    all_owners: bool = False
    live_at: datetime | None = None
    """When set, only sessions not expired at that time (expires_at absent or later)."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor_id: str | None = None
    action: str | None = None
    session_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class KeysetCursor:
    """Position in a newest-first listing: the time of the last row seen and its id."""

    at: datetime
    id: str


@dataclass(frozen=True, slots=True)
class SessionCursor:
    """Keyset position in the most-recent-activity-first listing."""

    last_activity_at: datetime
    session_id: str


@dataclass(frozen=True, slots=True)
class OwnerScope:
    """Whose sessions a listing may return; every listing query of the store takes one.
    `owner_id` None means every owner of the entity (for auditors and entity admins)."""

    entity_id: str
    owner_id: str | None


@dataclass(frozen=True, slots=True)
class GranteeScope:
    """Who is asking what was shared with them."""

    entity_id: str
    user_id: str
    internal: bool


@dataclass(slots=True)
class TurnPage:
    turns: list[Turn]
    has_more_before: bool
    has_more_after: bool


# The author of a turn whose author's data was erased: the turn keeps its place in the
# session (seq numbers stay gapless for the other participants) but nothing of its author.
ERASED_AUTHOR = "erased"


@dataclass(slots=True)
class ErasureCounts:
    """What one erasure (or one batch of it) removed of a user's data."""

    sessions: int = 0  # sessions they owned, deleted with everything in them
    session_turns: int = 0  # the turns those sessions held
    authored_turns: int = 0  # their turns in other people's sessions, emptied
    feedback: int = 0  # their feedback on other people's turns
    pins: int = 0
    shares: int = 0  # shares granted to them
    link_visits: int = 0  # links they opened
    participations: int = 0  # other sessions that listed them as a participant
    audit_events: int = 0  # events whose details lost their personal content
    titles: int = 0  # other sessions' generated titles, made again without their turns

    def add(self, other: ErasureCounts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in self.__slots__)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
