-- The earliest and latest turn time in each block of 4,096 turn rowids: a search with a
-- date range reads only the stretch of the index whose blocks overlap it (see
-- storage/sqlite/search/query.py, turns_in_time). Blocks only widen; deleting turns leaves them
-- as they are, which can only make a search read more, never miss a turn.

CREATE TABLE turn_time_blocks (
    block INTEGER PRIMARY KEY,
    earliest INTEGER NOT NULL,
    latest INTEGER NOT NULL
);

INSERT INTO turn_time_blocks (block, earliest, latest)
SELECT rowid >> 12, min(created_at), max(created_at) FROM turns GROUP BY rowid >> 12;
