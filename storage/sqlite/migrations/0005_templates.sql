-- Session templates that admins define over the API, each of one entity and one chat app
-- (the chat apps file's templates are not stored). A name is unique per entity and chat
-- app by its key (case and spacing folded), which the domain computes.

CREATE TABLE templates (
    id            TEXT PRIMARY KEY,
    entity_id     TEXT NOT NULL,
    chat_app_id   TEXT NOT NULL,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    description   TEXT NOT NULL,
    system_prompt TEXT,
    variables     TEXT,             -- JSON object, or NULL
    starter_turns TEXT NOT NULL,    -- JSON list of {"role", "content"}
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL, -- microseconds since the epoch, as everywhere
    updated_at    INTEGER NOT NULL
);

CREATE UNIQUE INDEX templates_by_entity_app_name ON templates (entity_id, chat_app_id, name_key);
