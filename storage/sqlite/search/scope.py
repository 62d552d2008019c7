"""Where the index keeps who may read a row: the scope tokens of each row, the stretch of
rowids of each entity, and the parts of the index a caller's search may read.

Every indexed row carries, beside its text, a `scope` column of tokens naming its
entity, owner, chat app, session and turn role. A search matches the text AND the scope
tokens the caller may read, so FTS5 intersects posting lists: the work grows with what
the caller can see, never with the whole corpus. The tokens are digits derived from a
hash, so the porter stemmer leaves them alone and no word of a conversation can collide
with them (the scope column is also queried by name).

Rows of one entity sit in one stretch of rowids: the entity's number (search_entities)
in the bits above ENTITY_SHIFT, the turn's rowid below (a title: minus the entity's
number and the session's rowid). A search over a whole entity bounds the rowid instead of
naming the entity's token, whose posting list would hold most of the index and cost a
seek per matching row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ....domain.query import SearchScope
from .. import driver

# The bits of a row's rowid below its entity's number: room for 2^40 turns or sessions.
ENTITY_SHIFT = 40
LOCAL_MASK = (1 << ENTITY_SHIFT) - 1


def scope_token(kind: str, *parts: str) -> str:
    digest = hashlib.blake2b("\x1f".join((kind, *parts)).encode(), digest_size=8).digest()
    return "1" + str(int.from_bytes(digest, "big"))


def scope_tokens(
    entity_id: str,
    owner_id: str,
    chat_app_id: str,
    session_id: str,
    role: str,
    entity_shared: bool | int = False,
) -> str:
    """The scope column of a row. `entity_shared`: the session has an ENTITY share that
    has not ended (not revoked, expiry not yet recorded), so its rows also carry the
    entity's shared token, which every internal colleague's search includes, instead of
    each colleague's query naming every such session."""
    tokens = [
        scope_token("e", entity_id),
        scope_token("o", entity_id, owner_id),
        scope_token("a", entity_id, chat_app_id),
        scope_token("s", session_id),
        scope_token("r", role),
    ]
    if entity_shared:
        tokens.append(scope_token("x", entity_id))
    return " ".join(tokens)


def entity_base(conn: driver.Connection, entity_id: str, *, create: bool = False) -> int | None:
    """Where the entity's stretch of rowids begins (None: nothing of it indexed yet);
    `create` gives a new entity the next number."""
    if create:
        conn.execute("INSERT OR IGNORE INTO search_entities (entity_id) VALUES (?)", (entity_id,))
    row = conn.execute(
        "SELECT number FROM search_entities WHERE entity_id = ?", (entity_id,)
    ).fetchone()
    return None if row is None else row[0] << ENTITY_SHIFT


def turn_row_id(base: int, turn_rowid: int) -> int:
    return base + turn_rowid


def title_row_id(base: int, session_rowid: int) -> int:
    return -(base + session_rowid)


def shared_with_entity(conn: driver.Connection, entity_id: str, session_id: str) -> bool:
    return bool(shared_with_entity_of(conn, entity_id, (session_id,)))


def shared_with_entity_of(
    conn: driver.Connection, entity_id: str, session_ids: tuple[str, ...]
) -> set[str]:
    """Which of the sessions have an ENTITY share to `entity_id` that has not ended (not
    revoked, expiry not yet recorded): the rule of the entity's shared token."""
    if not session_ids:
        return set()
    # For a few sessions, their own shares (shares_by_session): the unary + keeps the
    # planner off the grantee index, whose entry for a large entity holds thousands of
    # shares, read on every appended turn. For many, that index is quicker.
    by_session = "+" if len(session_ids) <= 16 else ""
    rows = conn.execute(
        "SELECT DISTINCT session_id FROM shares"
        f" WHERE session_id IN ({', '.join('?' * len(session_ids))})"
        f" AND {by_session}grantee_kind = 'ENTITY' AND {by_session}grantee_entity_id = ?"
        " AND revoked_at IS NULL AND expiry_recorded_at IS NULL",
        (*session_ids, entity_id),
    ).fetchall()
    return {r[0] for r in rows}


@dataclass(frozen=True, slots=True)
class ReadablePart:
    """What the caller may read of one entity's stretch of rows: the rows carrying one of
    `tokens`, or every row of the stretch when `tokens` is None."""

    entity_id: str
    base: int
    tokens: tuple[str, ...] | None


def readable_parts(conn: driver.Connection, scope: SearchScope) -> list[ReadablePart]:
    """The caller's own rows (or the whole entity's) and the sessions shared with them, per
    entity. In the caller's entity, the entity's shared token stands for every session
    shared with the whole entity (only internal colleagues are given those)."""
    by_entity: dict[str, list[str]] = {}
    if scope.shared_session_ids:
        rows = conn.execute(
            "SELECT id, entity_id FROM sessions"
            f" WHERE id IN ({', '.join('?' * len(scope.shared_session_ids))})",
            scope.shared_session_ids,
        ).fetchall()
        found = dict(rows)
        for session_id in scope.shared_session_ids:
            if session_id in found:
                by_entity.setdefault(found[session_id], []).append(session_id)
    same_entity = by_entity.pop(scope.entity_id, [])
    own: tuple[str, ...] | None = None
    if scope.owner_id is not None:
        with_entity = shared_with_entity_of(conn, scope.entity_id, tuple(same_entity))
        own = (
            scope_token("o", scope.entity_id, scope.owner_id),
            *([scope_token("x", scope.entity_id)] if with_entity else []),
            *(scope_token("s", sid) for sid in same_entity if sid not in with_entity),
        )
    parts = [(scope.entity_id, own)]
    parts += [
        (entity_id, tuple(scope_token("s", sid) for sid in ids))
        for entity_id, ids in by_entity.items()
    ]
    return with_bases(conn, parts)


def session_parts(conn: driver.Connection, sessions: list[tuple[str, str]]) -> list[ReadablePart]:
    """The rows of exactly these sessions, given as (entity, session id)."""
    by_entity: dict[str, list[str]] = {}
    for entity_id, session_id in sessions:
        by_entity.setdefault(entity_id, []).append(scope_token("s", session_id))
    return with_bases(conn, [(e, tuple(tokens)) for e, tokens in by_entity.items()])


def with_bases(
    conn: driver.Connection, parts: list[tuple[str, tuple[str, ...] | None]]
) -> list[ReadablePart]:
    """The parts (entity, tokens) of entities that have rows in the index."""
    readable = []
    for entity_id, tokens in parts:
        base = entity_base(conn, entity_id)
        if base is not None:  # nothing of that entity is indexed
            readable.append(ReadablePart(entity_id, base, tokens))
    return readable
