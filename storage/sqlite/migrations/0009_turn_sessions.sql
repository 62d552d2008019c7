-- Each turn's session by rowids only. Newest-first search orders thousands of matching
-- turns by their session's activity; reaching the session through this small table rather
-- than through each turn's own row (text, tool payloads: 6 GB at 10M turns, mostly not in
-- the page cache) is about half the work. Triggers keep it in step with turns.

CREATE TABLE turn_sessions (
    turn_rowid INTEGER PRIMARY KEY,
    session_rowid INTEGER NOT NULL
);

INSERT INTO turn_sessions (turn_rowid, session_rowid)
SELECT t.rowid, s.rowid FROM turns t JOIN sessions s ON s.id = t.session_id;

CREATE TRIGGER turn_sessions_on_insert AFTER INSERT ON turns
BEGIN
    INSERT INTO turn_sessions (turn_rowid, session_rowid)
    VALUES (NEW.rowid, (SELECT rowid FROM sessions WHERE id = NEW.session_id));
END;

CREATE TRIGGER turn_sessions_on_delete AFTER DELETE ON turns
BEGIN
    DELETE FROM turn_sessions WHERE turn_rowid = OLD.rowid;
END;
