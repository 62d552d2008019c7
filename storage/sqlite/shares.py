"""Share records: grants of a session to people, an entity or a link, their link
visits, and what has been shared with a caller."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...domain.models import (
    AuditEvent,
    GranteeKind,
    GranteeScope,
    KeysetCursor,
    Session,
    Share,
    ShareMode,
)
from . import codec, driver, sessions
from .audit import insert_audit
from .codec import SESSION_COLUMNS, opt_micros, to_micros
from .search import index

_SESSION_COLUMNS_OF_S = codec.qualified(SESSION_COLUMNS, "s")
SHARE_COLUMNS = (
    "id, session_id, entity_id, grantee_kind, grantee_entity_id, grantee_user_id, mode, "
    "created_by, created_at, expires_at, revoked_at, revoked_by, token_hash"
)


def share_row(share: Share) -> tuple:
    """The share as a row of `shares`, its columns in SHARE_COLUMNS' order."""
    return (
        share.id,
        share.session_id,
        share.entity_id,
        share.grantee_kind.value,
        share.grantee_entity_id,
        share.grantee_user_id,
        share.mode.value,
        share.created_by,
        to_micros(share.created_at),
        opt_micros(share.expires_at),
        opt_micros(share.revoked_at),
        share.revoked_by,
        share.token_hash,
    )


def share_from_row(r: tuple) -> Share:
    return Share(
        id=r[0],
        session_id=r[1],
        entity_id=r[2],
        grantee_kind=GranteeKind(r[3]),
        grantee_entity_id=r[4],
        grantee_user_id=r[5],
        mode=ShareMode(r[6]),
        created_by=r[7],
        created_at=codec.from_micros(r[8]),
        expires_at=codec.opt_datetime(r[9]),
        revoked_at=codec.opt_datetime(r[10]),
        revoked_by=r[11],
        token_hash=r[12],
    )


def create_share(conn: driver.Connection, share: Share, audit: AuditEvent) -> Share:
    sessions.require_session(conn, share.session_id)
    conn.execute(
        f"INSERT INTO shares ({SHARE_COLUMNS}) VALUES ({', '.join('?' * 13)})", share_row(share)
    )
    if share.grantee_kind is GranteeKind.ENTITY:
        index.rescope_session(conn, share.session_id)
    insert_audit(conn, audit)
    return share


def get_share(conn: driver.Connection, column: str, value: str) -> Share | None:
    row = conn.execute(
        f"SELECT {SHARE_COLUMNS} FROM shares WHERE {column} = ?", (value,)
    ).fetchone()
    return None if row is None else share_from_row(row)


def list_shares(conn: driver.Connection, session_id: str) -> list[Share]:
    rows = conn.execute(
        f"SELECT {SHARE_COLUMNS} FROM shares WHERE session_id = ? ORDER BY created_at, id",
        (session_id,),
    ).fetchall()
    return [share_from_row(r) for r in rows]


def revoke_share(
    conn: driver.Connection, share_id: str, at: datetime, by: str, audit: AuditEvent
) -> Share | None:
    revoked = conn.execute(
        "UPDATE shares SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL",
        (to_micros(at), by, share_id),
    ).rowcount
    share = get_share(conn, "id", share_id)
    if revoked:
        insert_audit(conn, audit)
        if share is not None and share.grantee_kind is GranteeKind.ENTITY:
            index.rescope_session(conn, share.session_id)
    return share


def record_link_visit(
    conn: driver.Connection,
    share: Share,
    entity_id: str,
    user_id: str,
    at: datetime,
    audit: AuditEvent | None,
) -> None:
    conn.execute(
        "INSERT INTO share_link_visits (share_id, entity_id, user_id, session_id, opened_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET opened_at = excluded.opened_at",
        (share.id, entity_id, user_id, share.session_id, to_micros(at)),
    )
    if audit is not None:
        insert_audit(conn, audit)


def opened_link_ids(
    conn: driver.Connection, session_id: str, entity_id: str, user_id: str
) -> set[str]:
    rows = conn.execute(
        "SELECT share_id FROM share_link_visits"
        " WHERE entity_id = ? AND user_id = ? AND session_id = ?",
        (entity_id, user_id, session_id),
    ).fetchall()
    return {r[0] for r in rows}


def list_shared_with(
    conn: driver.Connection,
    scope: GranteeScope,
    now: datetime,
    after: KeysetCursor | None,
    limit: int,
) -> list[tuple[Session, datetime]]:
    """Sessions someone else shared with the caller by a live grant, newest grant first,
    each session once (at the time of its newest grant)."""
    live = "sh.revoked_at IS NULL AND (sh.expires_at IS NULL OR sh.expires_at > :now)"
    # The grants drive the query, each kind through its own index, so the cost follows
    # what was shared with the caller, never the number of sessions.
    grants = (
        "SELECT sh.session_id, sh.created_at FROM shares sh"
        " WHERE sh.grantee_entity_id = :entity AND sh.grantee_kind IN ('USER', 'EXTERNAL')"
        f" AND sh.grantee_user_id = :user AND {live}"
        " UNION ALL SELECT sh.session_id, sh.created_at FROM shares sh"
        f" WHERE sh.grantee_entity_id = :entity AND sh.grantee_kind = 'ENTITY' AND :internal"
        f" AND {live}"
        " UNION ALL SELECT sh.session_id, sh.created_at FROM share_link_visits v"
        " JOIN shares sh ON sh.id = v.share_id"
        f" WHERE v.entity_id = :entity AND v.user_id = :user AND {live}"
    )
    params: dict[str, Any] = {
        "entity": scope.entity_id,
        "user": scope.user_id,
        "internal": int(scope.internal),
        "now": to_micros(now),
        "limit": limit,
    }
    after_clause = ""
    if after is not None:
        after_clause = "AND (g.shared_at, s.id) < (:after_at, :after_id)"
        params.update(after_at=to_micros(after.at), after_id=after.id)
    rows = conn.execute(
        f"SELECT {_SESSION_COLUMNS_OF_S}, g.shared_at FROM"
        f" (SELECT session_id, max(created_at) AS shared_at FROM ({grants}) GROUP BY session_id) g"
        " JOIN sessions s ON s.id = g.session_id"
        f" WHERE NOT (s.entity_id = :entity AND s.owner_id = :user) {after_clause}"
        " ORDER BY g.shared_at DESC, s.id DESC LIMIT :limit",
        params,
    ).fetchall()
    return [(codec.session_from_row(r[:-1]), codec.from_micros(r[-1])) for r in rows]


def expire_due_shares(
    conn: driver.Connection,
    now: datetime,
    limit: int,
    audit_for: Callable[[Share], AuditEvent],
) -> list[Share]:
    rows = conn.execute(
        f"SELECT {SHARE_COLUMNS} FROM shares"
        " WHERE expires_at IS NOT NULL AND expires_at <= ? AND revoked_at IS NULL"
        " AND expiry_recorded_at IS NULL ORDER BY expires_at LIMIT ?",
        (to_micros(now), limit),
    ).fetchall()
    expired = [share_from_row(r) for r in rows]
    for share in expired:
        conn.execute(
            "UPDATE shares SET expiry_recorded_at = ? WHERE id = ?", (to_micros(now), share.id)
        )
        if share.grantee_kind is GranteeKind.ENTITY:
            index.rescope_session(conn, share.session_id)
        insert_audit(conn, audit_for(share))
    return expired
