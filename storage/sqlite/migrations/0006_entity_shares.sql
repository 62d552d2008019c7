-- Rows of sessions shared with their whole entity carry the entity's shared token (see
-- storage/sqlite/search/scope.py, scope_tokens): backfill it for the shares that are live.

UPDATE search_index
SET scope = (
    SELECT sh_scope(s.entity_id, s.owner_id, s.chat_app_id, s.id, t.role, 1)
    FROM turns t JOIN sessions s ON s.id = t.session_id
    WHERE t.rowid = search_index.rowid
)
WHERE rowid IN (
    SELECT t.rowid FROM turns t JOIN shares sh ON sh.session_id = t.session_id
    WHERE sh.grantee_kind = 'ENTITY' AND sh.revoked_at IS NULL
      AND sh.expiry_recorded_at IS NULL
);

UPDATE search_index
SET scope = (
    SELECT sh_scope(s.entity_id, s.owner_id, s.chat_app_id, s.id, 'TITLE', 1)
    FROM sessions s WHERE -s.rowid = search_index.rowid
)
WHERE rowid IN (
    SELECT -s.rowid FROM sessions s JOIN shares sh ON sh.session_id = s.id
    WHERE s.title IS NOT NULL AND sh.grantee_kind = 'ENTITY' AND sh.revoked_at IS NULL
      AND sh.expiry_recorded_at IS NULL
);
