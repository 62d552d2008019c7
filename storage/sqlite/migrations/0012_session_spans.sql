-- How long each session has lasted, as a power of two (level L: from its first turn to its
-- last activity less than 2^L seconds), so that a search with a date range finds the
-- sessions that span the range's end (begun before it, active after it) by a few index
-- ranges rather than by reading every session active since (storage/sqlite/search/walk.py).
-- A virtual column: SQLite keeps it, and its index, as last_activity_at changes.

ALTER TABLE sessions ADD COLUMN span_level INTEGER GENERATED ALWAYS AS (
    CASE WHEN last_activity_at - created_at < 1000000 THEN 0
    ELSE CAST(log2((last_activity_at - created_at) / 1000000) AS INTEGER) + 1 END
) VIRTUAL;

CREATE INDEX sessions_by_entity_span ON sessions (entity_id, span_level, created_at);
