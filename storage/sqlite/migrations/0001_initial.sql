-- Sessions, turns, pins, shares and the audit trail.
-- Times are integer microseconds since the Unix epoch (UTC), JSON columns hold orjson text.

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    entity_id        TEXT NOT NULL,
    chat_app_id      TEXT NOT NULL,
    owner_id         TEXT NOT NULL,
    title            TEXT,
    title_source     TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL,
    turn_count       INTEGER NOT NULL DEFAULT 0,
    archived_at      INTEGER,
    tags             TEXT NOT NULL DEFAULT '[]',
    participants     TEXT NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL,
    template_id      TEXT,
    agent_context    TEXT,
    metadata         TEXT,
    expires_at       INTEGER,
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    cost             REAL NOT NULL DEFAULT 0,
    archived         INTEGER GENERATED ALWAYS AS (archived_at IS NOT NULL) VIRTUAL
);

-- Listings walk these in key order: scope first, then most recent activity.
CREATE INDEX sessions_by_owner_activity
    ON sessions (entity_id, owner_id, last_activity_at DESC, id DESC);
CREATE INDEX sessions_by_owner_archived_activity
    ON sessions (entity_id, owner_id, archived, last_activity_at DESC, id DESC);
CREATE INDEX sessions_by_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE session_tags (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    tag        TEXT NOT NULL,
    PRIMARY KEY (session_id, tag)
) WITHOUT ROWID;
CREATE INDEX session_tags_by_tag ON session_tags (tag, session_id);

CREATE TABLE turns (
    rowid            INTEGER PRIMARY KEY,
    id               TEXT NOT NULL,
    session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    role             TEXT NOT NULL,
    author_id        TEXT NOT NULL,
    content          TEXT NOT NULL,
    parts            TEXT,
    tool_invocations TEXT,
    trace            TEXT,
    verification     TEXT,
    feedback         TEXT,
    insights         TEXT,
    metadata         TEXT,
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    cost             REAL NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX turns_by_session_seq ON turns (session_id, seq);
CREATE UNIQUE INDEX turns_by_id ON turns (id);

CREATE TABLE pins (
    entity_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    pinned_at  INTEGER NOT NULL,
    PRIMARY KEY (entity_id, user_id, session_id)
) WITHOUT ROWID;
CREATE INDEX pins_by_user_time ON pins (entity_id, user_id, pinned_at DESC);
CREATE INDEX pins_by_session ON pins (session_id);

CREATE TABLE shares (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    entity_id    TEXT NOT NULL,
    grantee_kind TEXT NOT NULL,
    grantee_id   TEXT,
    mode         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    token_hash   TEXT UNIQUE
);
CREATE INDEX shares_by_session ON shares (session_id);
CREATE INDEX shares_by_grantee ON shares (grantee_kind, grantee_id, created_at DESC);

CREATE TABLE audit (
    rowid     INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    entity_id TEXT NOT NULL,
    actor_id  TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    at        INTEGER NOT NULL,
    details   TEXT
);
CREATE INDEX audit_by_entity_time ON audit (entity_id, at DESC);
CREATE INDEX audit_by_entity_target ON audit (entity_id, target, at DESC);

CREATE TRIGGER audit_is_append_only BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
