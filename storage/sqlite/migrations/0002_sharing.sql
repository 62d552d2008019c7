-- Sharing: grantees named by entity and user, link visits, expiry bookkeeping,
-- entity-wide listings for auditors, audit filters, and no updates to audit events.

ALTER TABLE shares RENAME COLUMN grantee_id TO grantee_user_id;
ALTER TABLE shares ADD COLUMN grantee_entity_id TEXT;
ALTER TABLE shares ADD COLUMN revoked_by TEXT;
-- When the expiry sweep recorded the share's end in the audit trail.
ALTER TABLE shares ADD COLUMN expiry_recorded_at INTEGER;

DROP INDEX shares_by_grantee;
CREATE INDEX shares_by_grantee
    ON shares (grantee_entity_id, grantee_kind, grantee_user_id, created_at DESC);
CREATE INDEX shares_due_to_expire ON shares (expires_at)
    WHERE expires_at IS NOT NULL AND revoked_at IS NULL AND expiry_recorded_at IS NULL;

-- Who opened a LINK share with its token; the link's grant reaches exactly these people.
CREATE TABLE share_link_visits (
    share_id   TEXT NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    entity_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    session_id TEXT NOT NULL,
    opened_at  INTEGER NOT NULL,
    PRIMARY KEY (entity_id, user_id, share_id)
) WITHOUT ROWID;
CREATE INDEX share_link_visits_by_share ON share_link_visits (share_id);

CREATE INDEX sessions_by_entity_activity ON sessions (entity_id, last_activity_at DESC, id DESC);

CREATE INDEX audit_by_entity_actor ON audit (entity_id, actor_id, at DESC);
CREATE INDEX audit_by_entity_action ON audit (entity_id, action, at DESC);

CREATE TRIGGER audit_is_never_rewritten BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
