"""Documents to domain objects and back.

Times. A BSON date holds milliseconds, and the domain keeps microseconds (a turn read back
must equal the turn written). Every time is therefore stored twice, side by side:

    created_at     BSON date (UTC, truncated to the millisecond): for people reading the
                   data and for Atlas Search date ranges (no TTL index: expiry is removed
                   by the audited retention cleanup, see indexes.py)
    created_at_us  int64 microseconds since the epoch: the exact value; what is read
                   back, sorted on, compared and used in keyset cursors

`None` is stored as null in both fields, so `{x_us: None}` matches "not set".

JSON values (agent context, metadata, parts, traces, tool input and output, insights,
audit details) are stored as native BSON, so they stay queryable. Values BSON cannot hold
(integers past 64 bits signed, NUL in a key) are refused at the boundary as bad input.

People. A person is written with their entity, always: `author_entity_id` on a turn,
`entity_id` on a feedback item, `verified_by_entity_id` on a verification; a session's
`participants` are the users of its own entity by id, its `external_participants`
({entity_id, user_id}) the others. Documents written before people carried their entity
have none of these fields, which is all that a missing one means: they read as people of
the session's entity, and those the stored trail settles as an external grantee's are
rewritten once at start (upgrades.py).

Nothing here imports Motor or PyMongo: documents are plain dicts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...domain.models import (
    AuditEvent,
    EntityTemplate,
    Feedback,
    FeedbackKind,
    Grade,
    GranteeKind,
    Person,
    Session,
    SessionStatus,
    SessionTemplate,
    Share,
    ShareMode,
    StarterTurn,
    TitleSource,
    TokenUsage,
    ToolInvocation,
    ToolStatus,
    Turn,
    TurnRole,
    Verification,
)
from ...domain.timecodec import from_micros, to_micros

Doc = dict[str, Any]

# Fields the store keeps on documents for itself, never part of the domain object: STATE on
# sessions and templates, OUTBOX on those, shares and link visits.
STATE = "state"  # absent when the session is visible; CREATING or DELETING otherwise
CREATING = "creating"
# When a session was written hidden, by the writing server's own clock: recovery judges
# abandonment by it, never by created_at, which the domain may set in the past.
CREATING_SINCE = "creating_since_us"
DELETING = "deleting"
OUTBOX = "outbox"  # audit events written with the change, copied to `audit` right after


def us(value: datetime) -> int:
    return to_micros(value)


def opt_us(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def bson_date(value: datetime) -> datetime:
    """The BSON date of `value`: naive UTC (which the driver stores as UTC), truncated to
    the millisecond as BSON keeps it."""
    value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def put_time(doc: Doc, name: str, value: datetime | None) -> None:
    doc[name] = None if value is None else bson_date(value)
    doc[f"{name}_us"] = opt_us(value)


def time_fields(name: str, value: datetime | None) -> Doc:
    doc: Doc = {}
    put_time(doc, name, value)
    return doc


def get_time(doc: Doc, name: str) -> datetime | None:
    value = doc.get(f"{name}_us")
    return None if value is None else from_micros(value)


def must_time(doc: Doc, name: str) -> datetime:
    value = get_time(doc, name)
    if value is None:
        raise ValueError(f"document {doc.get('_id')!r} has no {name}")
    return value


def usage_doc(usage: TokenUsage) -> Doc:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost": usage.cost,
    }


def usage_from(doc: Doc | None) -> TokenUsage:
    doc = doc or {}
    return TokenUsage(doc.get("input_tokens", 0), doc.get("output_tokens", 0), doc.get("cost", 0.0))


# Sessions


def person_doc(p: Person) -> Doc:
    return {"entity_id": p.entity_id, "user_id": p.user_id}


def session_doc(s: Session) -> Doc:
    doc: Doc = {
        "_id": s.id,
        "entity_id": s.entity_id,
        "chat_app_id": s.chat_app_id,
        "owner_id": s.owner_id,
        "title": s.title,
        "title_source": s.title_source.value,
        "title_version": s.title_version,
    }
    put_time(doc, "created_at", s.created_at)
    put_time(doc, "updated_at", s.updated_at)
    put_time(doc, "last_activity_at", s.last_activity_at)
    doc["turn_count"] = s.turn_count
    put_time(doc, "archived_at", s.archived_at)
    doc["archived"] = s.archived_at is not None
    doc["tags"] = list(s.tags)
    doc["participants"] = list(s.participants)
    if s.external_participants:
        doc["external_participants"] = [person_doc(p) for p in s.external_participants]
    doc["status"] = s.status.value
    doc["template_id"] = s.template_id
    doc["agent_context"] = s.agent_context
    doc["metadata"] = s.metadata
    put_time(doc, "expires_at", s.expires_at)
    doc["usage"] = usage_doc(s.usage)
    return doc


def session_from(doc: Doc) -> Session:
    return Session(
        id=doc["_id"],
        entity_id=doc["entity_id"],
        chat_app_id=doc["chat_app_id"],
        owner_id=doc["owner_id"],
        title=doc.get("title"),
        title_source=TitleSource(doc["title_source"]),
        created_at=must_time(doc, "created_at"),
        updated_at=must_time(doc, "updated_at"),
        last_activity_at=must_time(doc, "last_activity_at"),
        turn_count=doc.get("turn_count", 0),
        archived_at=get_time(doc, "archived_at"),
        tags=list(doc.get("tags") or []),
        participants=list(doc.get("participants") or []),
        external_participants=[
            Person(p["entity_id"], p["user_id"]) for p in doc.get("external_participants") or []
        ],
        status=SessionStatus(doc["status"]),
        template_id=doc.get("template_id"),
        agent_context=doc.get("agent_context"),
        metadata=doc.get("metadata"),
        expires_at=get_time(doc, "expires_at"),
        usage=usage_from(doc.get("usage")),
        title_version=doc.get("title_version") or 0,
    )


# Turns


def _tool_doc(t: ToolInvocation) -> Doc:
    doc: Doc = {
        "id": t.id,
        "name": t.name,
        "input": t.input,
        "output": t.output,
        "status": t.status.value,
        "error": t.error,
    }
    put_time(doc, "started_at", t.started_at)
    doc["duration_ms"] = t.duration_ms
    return doc


def tool_from(doc: Doc) -> ToolInvocation:
    return ToolInvocation(
        id=doc["id"],
        name=doc["name"],
        input=doc.get("input"),
        output=doc.get("output"),
        status=ToolStatus(doc["status"]),
        error=doc.get("error"),
        started_at=get_time(doc, "started_at"),
        duration_ms=doc.get("duration_ms"),
    )


def verification_doc(v: Verification | None) -> Doc | None:
    if v is None:
        return None
    doc: Doc = {"grade": v.grade.value, "score": v.score, "notes": v.notes}
    put_time(doc, "verified_at", v.verified_at)
    doc["verified_by"] = v.verified_by
    doc["verified_by_entity_id"] = v.verified_by_entity_id
    return doc


def _verification_from(doc: Doc | None, session_entity_id: str) -> Verification | None:
    if doc is None:
        return None
    return Verification(
        grade=Grade(doc["grade"]),
        score=doc.get("score"),
        notes=doc.get("notes"),
        verified_at=must_time(doc, "verified_at"),
        verified_by=doc["verified_by"],
        verified_by_entity_id=doc.get("verified_by_entity_id", session_entity_id),
    )


def feedback_doc(f: Feedback) -> Doc:
    doc: Doc = {"user_id": f.user_id, "kind": f.kind.value, "comment": f.comment}
    put_time(doc, "at", f.at)
    doc["entity_id"] = f.entity_id
    return doc


def _feedback_from(doc: Doc, session_entity_id: str) -> Feedback:
    return Feedback(
        user_id=doc["user_id"],
        kind=FeedbackKind(doc["kind"]),
        comment=doc.get("comment"),
        at=must_time(doc, "at"),
        entity_id=doc.get("entity_id", session_entity_id),
    )


def turn_doc(t: Turn, session: Doc) -> Doc:
    """The turn with the scope of its session copied in: entity, chat app and owner (for
    scoped text and Atlas searches) and the session's expiry (for the TTL index)."""
    doc: Doc = {
        "_id": t.id,
        "session_id": t.session_id,
        "seq": t.seq,
        "entity_id": session["entity_id"],
        "chat_app_id": session["chat_app_id"],
        "owner_id": session["owner_id"],
        "role": t.role.value,
        "author_id": t.author_id,
        "content": t.content,
        "parts": t.parts,
        "tool_invocations": [_tool_doc(i) for i in t.tool_invocations],
        "trace": t.trace,
        "verification": verification_doc(t.verification),
        "feedback": [feedback_doc(f) for f in t.feedback],
        "insights": t.insights,
        "metadata": t.metadata,
        "usage": usage_doc(t.usage),
        "author_entity_id": t.author_entity_id,
    }
    put_time(doc, "created_at", t.created_at)
    return doc


def turn_from(doc: Doc) -> Turn:
    entity_id = doc["entity_id"]
    return Turn(
        id=doc["_id"],
        session_id=doc["session_id"],
        seq=doc["seq"],
        role=TurnRole(doc["role"]),
        author_id=doc["author_id"],
        content=doc["content"],
        created_at=must_time(doc, "created_at"),
        parts=doc.get("parts"),
        tool_invocations=[tool_from(d) for d in doc.get("tool_invocations") or []],
        trace=doc.get("trace"),
        verification=_verification_from(doc.get("verification"), entity_id),
        feedback=[_feedback_from(d, entity_id) for d in doc.get("feedback") or []],
        insights=doc.get("insights"),
        metadata=doc.get("metadata"),
        usage=usage_from(doc.get("usage")),
        entity_id=entity_id,
        author_entity_id=doc.get("author_entity_id", entity_id),
    )


# Shares


def share_doc(s: Share, session: Doc) -> Doc:
    """The share with its session's entity and owner copied in, so that the shared-with
    listing can leave out the caller's own sessions before joining."""
    doc: Doc = {
        "_id": s.id,
        "session_id": s.session_id,
        "entity_id": s.entity_id,
        "session_entity_id": session["entity_id"],
        "session_owner_id": session["owner_id"],
        "grantee_kind": s.grantee_kind.value,
        "grantee_entity_id": s.grantee_entity_id,
        "grantee_user_id": s.grantee_user_id,
        "mode": s.mode.value,
        "created_by": s.created_by,
    }
    put_time(doc, "created_at", s.created_at)
    put_time(doc, "expires_at", s.expires_at)
    put_time(doc, "revoked_at", s.revoked_at)
    doc["revoked_by"] = s.revoked_by
    put_time(doc, "expiry_recorded_at", None)
    # Absent rather than null: the unique index on token_hash covers only shares that
    # have one (partial filter `token_hash: {$exists: true}`).
    if s.token_hash is not None:
        doc["token_hash"] = s.token_hash
    return doc


def share_from(doc: Doc) -> Share:
    return Share(
        id=doc["_id"],
        session_id=doc["session_id"],
        entity_id=doc["entity_id"],
        grantee_kind=GranteeKind(doc["grantee_kind"]),
        grantee_entity_id=doc.get("grantee_entity_id"),
        grantee_user_id=doc.get("grantee_user_id"),
        mode=ShareMode(doc["mode"]),
        created_by=doc["created_by"],
        created_at=must_time(doc, "created_at"),
        expires_at=get_time(doc, "expires_at"),
        revoked_at=get_time(doc, "revoked_at"),
        revoked_by=doc.get("revoked_by"),
        token_hash=doc.get("token_hash"),
    )


# Audit


def audit_doc(e: AuditEvent) -> Doc:
    """The event keyed by its domain id: inserting it twice (a retried write, a recovered
    outbox) is a duplicate key, which the store ignores."""
    doc: Doc = {
        "_id": e.id,
        "entity_id": e.entity_id,
        "actor_id": e.actor_id,
        "action": e.action,
        "target": e.target,
    }
    put_time(doc, "at", e.at)
    doc["details"] = e.details
    return doc


def audit_from(doc: Doc) -> AuditEvent:
    return AuditEvent(
        id=doc["_id"],
        entity_id=doc["entity_id"],
        actor_id=doc["actor_id"],
        action=doc["action"],
        target=doc["target"],
        at=must_time(doc, "at"),
        details=doc.get("details"),
    )


# Session templates defined by admins


def template_doc(t: EntityTemplate) -> Doc:
    doc: Doc = {"_id": t.id, "entity_id": t.entity_id, "chat_app_id": t.chat_app_id}
    doc.update(template_fields(t))
    doc["created_by"] = t.created_by
    put_time(doc, "created_at", t.created_at)
    return doc


def template_fields(t: EntityTemplate) -> Doc:
    """What updating a template replaces: everything but its ids, entity, chat app and
    creation."""
    doc: Doc = {
        "name": t.template.name,
        "name_key": t.name_key,
        "description": t.template.description,
        "system_prompt": t.template.system_prompt,
        "variables": t.template.variables,
        "starter_turns": [
            {"role": s.role.value, "content": s.content} for s in t.template.starter_turns
        ],
    }
    put_time(doc, "updated_at", t.updated_at)
    return doc


def template_from(doc: Doc) -> EntityTemplate:
    return EntityTemplate(
        entity_id=doc["entity_id"],
        chat_app_id=doc["chat_app_id"],
        template=SessionTemplate(
            id=doc["_id"],
            name=doc["name"],
            description=doc["description"],
            system_prompt=doc.get("system_prompt"),
            variables=doc.get("variables"),
            starter_turns=tuple(
                StarterTurn(TurnRole(s["role"]), s["content"]) for s in doc["starter_turns"]
            ),
        ),
        created_by=doc["created_by"],
        created_at=must_time(doc, "created_at"),
        updated_at=must_time(doc, "updated_at"),
    )
