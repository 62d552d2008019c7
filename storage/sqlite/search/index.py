"""Index writes: the rows of the search index (main and phrase) and the turn time blocks,
written in the same transaction as the change to a turn, a title or a share they mirror.
"""

from __future__ import annotations

import functools

import orjson

from ....domain.analysis import analyze
from ....domain.languages import NO_CONFIGURED_LANGUAGES, Languages
from ....domain.models import Session
from ....domain.query import searchable_text
from .. import driver
from . import phrases, vocabulary
from .scope import entity_base, scope_tokens, shared_with_entity, title_row_id, turn_row_id

TITLE_ROLE = "TITLE"


def _indexed_facts(conn: driver.Connection, session_id: str) -> tuple | None:
    """(rowid, entity, owner, chat app, title) of the session, or None."""
    return conn.execute(
        "SELECT rowid, entity_id, owner_id, chat_app_id, title FROM sessions WHERE id = ?",
        (session_id,),
    ).fetchone()


def rescope_session(conn: driver.Connection, session_id: str) -> None:
    """Rewrite the scope of the session's rows after an ENTITY share began or ended."""
    row = _indexed_facts(conn, session_id)
    if row is None:
        return
    session_rowid, entity_id, owner_id, chat_app_id, title = row
    base = entity_base(conn, entity_id)
    if base is None:
        return
    shared = shared_with_entity(conn, entity_id, session_id)
    rows = [
        (turn_row_id(base, rowid), role)
        for rowid, role in conn.execute(
            "SELECT rowid, role FROM turns WHERE session_id = ?", (session_id,)
        )
    ]
    if title:
        rows.append((title_row_id(base, session_rowid), TITLE_ROLE))
    phrases.unindex_rows(conn, [rowid for rowid, _ in rows])
    scopes = [
        (scope_tokens(entity_id, owner_id, chat_app_id, session_id, role, shared), rowid)
        for rowid, role in rows
    ]
    conn.executemany("UPDATE search_index SET scope = ? WHERE rowid = ?", scopes)
    phrases.index_rows(conn, [rowid for rowid, _ in rows])


def turn_body(content: str, tool_invocations_json: str | None) -> str:
    """The searchable text of a stored turn (its tool invocations as stored JSON)."""
    calls = orjson.loads(tool_invocations_json) if tool_invocations_json else ()
    return searchable_text(
        content, ((c["name"], c.get("input"), c.get("output"), c.get("error")) for c in calls)
    )


# A migration asks for several parts of one row's analysis in a row.
_analyzed = functools.lru_cache(maxsize=4)(analyze)


def register_functions(conn: driver.Connection) -> None:
    """SQL access to the same functions, for migrations that backfill the index."""
    conn.create_function("sh_scope", 5, scope_tokens, deterministic=True)
    conn.create_function("sh_scope", 6, scope_tokens, deterministic=True)
    conn.create_function("sh_body", 2, turn_body, deterministic=True)
    conn.create_function("sh_pair_terms", 2, phrases.pair_terms, deterministic=True)
    conn.create_function(
        "sh_index_words", 1, lambda text: _analyzed(text).stream, deterministic=True
    )
    conn.create_function(
        "sh_language", 1, lambda text: _analyzed(text).language, deterministic=True
    )
    conn.create_function(
        "sh_distinct_words",
        1,
        lambda text: orjson.dumps(sorted(set(_analyzed(text).words))).decode(),
        deterministic=True,
    )
    conn.create_function(
        "sh_stem_links",
        1,
        lambda text: orjson.dumps(sorted(_analyzed(text).links)).decode(),
        deterministic=True,
    )


def index_turn(
    conn: driver.Connection,
    rowid: int,
    session: Session,
    role: str,
    content: str,
    tools_json: str | None,
    created_at_us: int,
    time_block_shift: int,
    languages: Languages = NO_CONFIGURED_LANGUAGES,
) -> None:
    base = entity_base(conn, session.entity_id, create=True)
    assert base is not None
    note_turn_time(conn, rowid, created_at_us, time_block_shift)
    _insert_row(
        conn,
        turn_row_id(base, rowid),
        turn_body(content, tools_json),
        languages.get(session.chat_app_id, ()),
        scope_tokens(
            session.entity_id,
            session.owner_id,
            session.chat_app_id,
            session.id,
            role,
            shared_with_entity(conn, session.entity_id, session.id),
        ),
    )


def _insert_row(
    conn: driver.Connection, rowid: int, text: str, languages: tuple[str, ...], scope: str
) -> None:
    analysis = analyze(text, languages)
    body = analysis.stream
    conn.execute(
        "INSERT INTO search_index (rowid, body, scope, language) VALUES (?, ?, ?, ?)",
        (rowid, body, scope, analysis.language),
    )
    phrases.index_row(conn, rowid, body, scope)
    vocabulary.add(conn, [analysis])


def _delete_rows(conn: driver.Connection, rowids: list[int]) -> None:
    rows = phrases.main_index_rows(conn, rowids)
    phrases.unindex_found(conn, rows)
    vocabulary.remove(conn, (body for _, body, _ in rows))
    conn.executemany("DELETE FROM search_index WHERE rowid = ?", [(r,) for r, _, _ in rows])


def index_title(
    conn: driver.Connection, session_id: str, languages: Languages = NO_CONFIGURED_LANGUAGES
) -> None:
    """(Re)write the title row of a session from its current title, stemmed in its chat
    app's `languages`."""
    row = _indexed_facts(conn, session_id)
    if row is None:
        return
    session_rowid, entity_id, owner_id, chat_app_id, title = row
    base = entity_base(conn, entity_id, create=True)
    assert base is not None
    rowid = title_row_id(base, session_rowid)
    _delete_rows(conn, [rowid])
    if title:
        _insert_row(
            conn,
            rowid,
            title,
            languages.get(chat_app_id, ()),
            scope_tokens(
                entity_id,
                owner_id,
                chat_app_id,
                session_id,
                TITLE_ROLE,
                shared_with_entity(conn, entity_id, session_id),
            ),
        )


def unindex_session(conn: driver.Connection, session_id: str) -> None:
    row = conn.execute(
        "SELECT rowid, entity_id FROM sessions WHERE id = ?", (session_id,)
    ).fetchone()
    if row is None:
        return
    session_rowid, entity_id = row
    base = entity_base(conn, entity_id)
    if base is None:
        return
    rowids = [
        turn_row_id(base, rowid)
        for (rowid,) in conn.execute("SELECT rowid FROM turns WHERE session_id = ?", (session_id,))
    ]
    _delete_rows(conn, [*rowids, title_row_id(base, session_rowid)])


def unindex_turns(conn: driver.Connection, entity_id: str, turn_rowids: list[int]) -> None:
    base = entity_base(conn, entity_id)
    if base is None:
        return
    _delete_rows(conn, [turn_row_id(base, r) for r in turn_rowids])


def note_turn_time(
    conn: driver.Connection, turn_rowid: int, created_at_us: int, time_block_shift: int
) -> None:
    """Keep the earliest and latest turn time of the turn's block of rowids (blocks of
    2^`time_block_shift`)."""
    conn.execute(
        "INSERT INTO turn_time_blocks (block, earliest, latest) VALUES (?, ?, ?)"
        " ON CONFLICT (block) DO UPDATE SET earliest = min(earliest, excluded.earliest),"
        " latest = max(latest, excluded.latest)",
        (turn_rowid >> time_block_shift, created_at_us, created_at_us),
    )
