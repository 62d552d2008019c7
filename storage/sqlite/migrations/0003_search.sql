-- Full-text search: one FTS5 index over turn text and session titles, with scope tokens
-- (entity, owner, chat app, session, role) beside the text so that a search intersects
-- the caller's scope inside the index. See storage/sqlite/search/scope.py.

CREATE VIRTUAL TABLE search_index USING fts5(
    body,
    scope,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

INSERT INTO search_index (rowid, body, scope)
SELECT t.rowid, sh_body(t.content, t.tool_invocations),
       sh_scope(s.entity_id, s.owner_id, s.chat_app_id, s.id, t.role)
FROM turns t JOIN sessions s ON s.id = t.session_id;

INSERT INTO search_index (rowid, body, scope)
SELECT -s.rowid, s.title, sh_scope(s.entity_id, s.owner_id, s.chat_app_id, s.id, 'TITLE')
FROM sessions s WHERE s.title IS NOT NULL;
