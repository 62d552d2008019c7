"""Rows to domain objects and back: times as integer microseconds, JSON as orjson text.

A person is written with their entity, always: `turns.author_entity_id`, a feedback
item's `entity_id`, a verification's `verified_by_entity_id` (a session's `participants`
are the users of its own entity by id, `external_participants` the others with theirs).
No entity stored means only that the row was written before people carried their entity
(migration 0014); it reads as a person of the session's entity, and migration 0015
settles those the stored trail shows were an external grantee's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from ...domain.models import (
    Feedback,
    FeedbackKind,
    Grade,
    Person,
    Session,
    SessionStatus,
    TitleSource,
    TokenUsage,
    ToolInvocation,
    ToolStatus,
    Turn,
    TurnRole,
    Verification,
)
from ...domain.timecodec import from_micros, to_micros

DAY_US = 86_400_000_000


def opt_micros(value: datetime | None) -> int | None:
    return None if value is None else to_micros(value)


def opt_datetime(value: int | None) -> datetime | None:
    return None if value is None else from_micros(value)


def dump_json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def load_json(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


SESSION_COLUMNS = (
    "id, entity_id, chat_app_id, owner_id, title, title_source, created_at, updated_at, "
    "last_activity_at, turn_count, archived_at, tags, participants, status, template_id, "
    "agent_context, metadata, expires_at, input_tokens, output_tokens, cost, "
    "external_participants, title_version"
)


def qualified(columns: str, alias: str) -> str:
    """The columns of a list such as SESSION_COLUMNS, each named through `alias`."""
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


def people_to_json(people: list[Person]) -> str | None:
    """Participants of other entities; NULL when there are none (the usual case)."""
    if not people:
        return None
    return dump_json([{"entity_id": p.entity_id, "user_id": p.user_id} for p in people])


def people_from_json(text: str | None) -> list[Person]:
    if text is None:
        return []
    return [Person(d["entity_id"], d["user_id"]) for d in orjson.loads(text)]


def session_row(s: Session) -> tuple:
    return (
        s.id,
        s.entity_id,
        s.chat_app_id,
        s.owner_id,
        s.title,
        s.title_source.value,
        to_micros(s.created_at),
        to_micros(s.updated_at),
        to_micros(s.last_activity_at),
        s.turn_count,
        opt_micros(s.archived_at),
        orjson.dumps(s.tags).decode(),
        orjson.dumps(s.participants).decode(),
        s.status.value,
        s.template_id,
        dump_json(s.agent_context),
        dump_json(s.metadata),
        opt_micros(s.expires_at),
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cost,
        people_to_json(s.external_participants),
        s.title_version,
    )


def session_from_row(r: tuple) -> Session:
    return Session(
        id=r[0],
        entity_id=r[1],
        chat_app_id=r[2],
        owner_id=r[3],
        title=r[4],
        title_source=TitleSource(r[5]),
        created_at=from_micros(r[6]),
        updated_at=from_micros(r[7]),
        last_activity_at=from_micros(r[8]),
        turn_count=r[9],
        archived_at=opt_datetime(r[10]),
        tags=orjson.loads(r[11]),
        participants=orjson.loads(r[12]),
        status=SessionStatus(r[13]),
        template_id=r[14],
        agent_context=load_json(r[15]),
        metadata=load_json(r[16]),
        expires_at=opt_datetime(r[17]),
        usage=TokenUsage(r[18], r[19], r[20]),
        external_participants=people_from_json(r[21]),
        title_version=r[22],
    )


TURN_COLUMNS = (
    "id, session_id, seq, role, author_id, content, parts, tool_invocations, trace, "
    "verification, feedback, insights, metadata, input_tokens, output_tokens, cost, created_at, "
    "author_entity_id"
)


def _tool_to_json(t: ToolInvocation) -> dict:
    return {
        "id": t.id,
        "name": t.name,
        "input": t.input,
        "output": t.output,
        "status": t.status.value,
        "error": t.error,
        "started_at": opt_micros(t.started_at),
        "duration_ms": t.duration_ms,
    }


def _tool_from_json(d: dict) -> ToolInvocation:
    return ToolInvocation(
        id=d["id"],
        name=d["name"],
        input=d["input"],
        output=d["output"],
        status=ToolStatus(d["status"]),
        error=d["error"],
        started_at=opt_datetime(d["started_at"]),
        duration_ms=d["duration_ms"],
    )


def verification_to_json(v: Verification | None) -> str | None:
    if v is None:
        return None
    d = {
        "grade": v.grade.value,
        "score": v.score,
        "notes": v.notes,
        "verified_at": to_micros(v.verified_at),
        "verified_by": v.verified_by,
        "verified_by_entity_id": v.verified_by_entity_id,
    }
    return dump_json(d)


def _verification_from_json(text: str | None, session_entity_id: str) -> Verification | None:
    if text is None:
        return None
    d = orjson.loads(text)
    return Verification(
        grade=Grade(d["grade"]),
        score=d["score"],
        notes=d["notes"],
        verified_at=from_micros(d["verified_at"]),
        verified_by=d["verified_by"],
        verified_by_entity_id=d.get("verified_by_entity_id", session_entity_id),
    )


def _feedback_to_dict(f: Feedback) -> dict:
    return {
        "user_id": f.user_id,
        "kind": f.kind.value,
        "comment": f.comment,
        "at": to_micros(f.at),
        "entity_id": f.entity_id,
    }


def _feedback_from_dict(d: dict, session_entity_id: str) -> Feedback:
    return Feedback(
        user_id=d["user_id"],
        kind=FeedbackKind(d["kind"]),
        comment=d["comment"],
        at=from_micros(d["at"]),
        entity_id=d.get("entity_id", session_entity_id),
    )


def feedback_to_json(items: list[Feedback]) -> str | None:
    if not items:
        return None
    return dump_json([_feedback_to_dict(f) for f in items])


def feedback_from_json(text: str | None, session_entity_id: str) -> list[Feedback]:
    if text is None:
        return []
    return [_feedback_from_dict(d, session_entity_id) for d in orjson.loads(text)]


def feedback_changed(
    text: str | None,
    session_entity_id: str,
    dropped: Callable[[Feedback], bool],
    added: Feedback | None = None,
) -> str | None:
    """The stored feedback without the items `dropped` selects, and with `added`; the
    items kept stay exactly as stored (one written before people carried their entity
    keeps having none)."""
    kept = [
        d
        for d in (orjson.loads(text) if text else [])
        if not dropped(_feedback_from_dict(d, session_entity_id))
    ]
    if added is not None:
        kept.append(_feedback_to_dict(added))
    return dump_json(kept) if kept else None


def turn_row(t: Turn) -> tuple:
    return (
        t.id,
        t.session_id,
        t.seq,
        t.role.value,
        t.author_id,
        t.content,
        dump_json(t.parts),
        dump_json([_tool_to_json(i) for i in t.tool_invocations]) if t.tool_invocations else None,
        dump_json(t.trace),
        verification_to_json(t.verification),
        feedback_to_json(t.feedback),
        dump_json(t.insights),
        dump_json(t.metadata),
        t.usage.input_tokens,
        t.usage.output_tokens,
        t.usage.cost,
        to_micros(t.created_at),
        t.author_entity_id,
    )


def turn_from_row(r: tuple, entity_id: str) -> Turn:
    """A row of TURN_COLUMNS, of a session of `entity_id`: the entity the people of the
    turn (author, feedback, verifier) belong to unless they name another."""
    tools = r[7]
    return Turn(
        id=r[0],
        session_id=r[1],
        seq=r[2],
        role=TurnRole(r[3]),
        author_id=r[4],
        content=r[5],
        parts=load_json(r[6]),
        tool_invocations=[_tool_from_json(d) for d in orjson.loads(tools)] if tools else [],
        trace=load_json(r[8]),
        verification=_verification_from_json(r[9], entity_id),
        feedback=feedback_from_json(r[10], entity_id),
        insights=load_json(r[11]),
        metadata=load_json(r[12]),
        usage=TokenUsage(r[13], r[14], r[15]),
        created_at=from_micros(r[16]),
        entity_id=entity_id,
        author_entity_id=r[17] or entity_id,
    )
