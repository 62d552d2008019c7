-- Right to erasure: deleted text leaves no trace in the full-text index, feedback is found
-- without reading every turn, and erasure may strip personal content from audit details.

-- Deleting a row removes its entries from the index b-tree itself (FTS5 otherwise only
-- adds "deleted" markers and keeps the old tokens until segments happen to merge).
INSERT INTO search_index (search_index, rank) VALUES ('secure-delete', 1);
-- Rows deleted before this migration left their tokens in old segments: merge them away.
INSERT INTO search_index (search_index) VALUES ('optimize');

CREATE INDEX turns_with_feedback ON turns (session_id) WHERE feedback IS NOT NULL;

-- Audit events stay append-only; the one change allowed is erasure replacing an event's
-- details with a redacted version (marked "redacted": true), nothing else of the row.
DROP TRIGGER audit_is_never_rewritten;
CREATE TRIGGER audit_is_never_rewritten BEFORE UPDATE ON audit
WHEN NEW.rowid IS NOT OLD.rowid OR NEW.id IS NOT OLD.id OR NEW.entity_id IS NOT OLD.entity_id
    OR NEW.actor_id IS NOT OLD.actor_id OR NEW.action IS NOT OLD.action
    OR NEW.target IS NOT OLD.target OR NEW.at IS NOT OLD.at
    OR json_extract(NEW.details, '$.redacted') IS NOT 1
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
