-- The background merges (SqliteStore._merge_forever) merge a level of the full-text
-- indexes once it holds 8 segments rather than FTS5's default of 4: half the levels, so
-- each page of the index is rewritten about half as often. On a 200k-turn store, 5,000
-- appends spent 1.8 ms each in merges at 4 and 0.2 ms at 8, for 10 to 20 segments a table.

INSERT INTO search_index (search_index, rank) VALUES ('usermerge', 8);
INSERT INTO search_pairs (search_pairs, rank) VALUES ('usermerge', 8);
