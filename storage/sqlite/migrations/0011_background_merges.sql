-- FTS5 no longer merges index segments inside the commits of writes (every 64th leaf
-- page written, one commit did hundreds of pages of merging); the store merges them in
-- the background in small slices instead (SqliteStore._merge_forever).

INSERT INTO search_index (search_index, rank) VALUES ('automerge', 0);
INSERT INTO search_pairs (search_pairs, rank) VALUES ('automerge', 0);
