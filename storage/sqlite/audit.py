"""Audit records: the append-only trail of events per entity, and the redaction of the
personal content of events (the events themselves stay)."""

from __future__ import annotations

from collections.abc import Callable

from ...domain.models import JSON, AuditEvent, AuditFilter, KeysetCursor
from . import codec, driver
from .codec import to_micros

_AUDIT_COLUMNS = "id, entity_id, actor_id, action, target, at, details"


def insert_audit(conn: driver.Connection, event: AuditEvent) -> None:
    conn.execute(
        f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            event.id,
            event.entity_id,
            event.actor_id,
            event.action,
            event.target,
            to_micros(event.at),
            codec.dump_json(event.details),
        ),
    )


def list_audit(
    conn: driver.Connection,
    entity_id: str,
    audit_filter: AuditFilter,
    after: KeysetCursor | None,
    limit: int,
) -> list[AuditEvent]:
    clauses: list[str] = ["entity_id = ?"]
    params: list[str | int] = [entity_id]
    if audit_filter.actor_id is not None:
        clauses.append("actor_id = ?")
        params.append(audit_filter.actor_id)
    if audit_filter.action is not None:
        clauses.append("action = ?")
        params.append(audit_filter.action)
    if audit_filter.session_id is not None:
        clauses.append("target = ?")
        params.append(f"session:{audit_filter.session_id}")
    if audit_filter.since is not None:
        clauses.append("at >= ?")
        params.append(to_micros(audit_filter.since))
    if audit_filter.until is not None:
        clauses.append("at < ?")
        params.append(to_micros(audit_filter.until))
    if after is not None:
        clauses.append("(at, id) < (?, ?)")
        params.extend([to_micros(after.at), after.id])
    rows = conn.execute(
        f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE {' AND '.join(clauses)}"
        " ORDER BY at DESC, id DESC LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [
        AuditEvent(
            id=r[0],
            entity_id=r[1],
            actor_id=r[2],
            action=r[3],
            target=r[4],
            at=codec.from_micros(r[5]),
            details=codec.load_json(r[6]),
        )
        for r in rows
    ]


def redact_audit(
    conn: driver.Connection,
    where: str,
    params: tuple,
    redact: Callable[[JSON], JSON],
    limit: int = -1,
) -> int:
    rows = conn.execute(
        f"SELECT rowid, details FROM audit WHERE {where}"
        " AND (details IS NULL OR json_extract(details, '$.redacted') IS NOT 1) LIMIT ?",
        (*params, limit),
    ).fetchall()
    conn.executemany(
        "UPDATE audit SET details = ? WHERE rowid = ?",
        [(codec.dump_json(redact(codec.load_json(details))), rowid) for rowid, details in rows],
    )
    return len(rows)
