-- The phrase index: for every row of search_index (same rowid), the pairs of adjacent
-- tokens of its text as terms ("printer_jam") and its scope tokens, without positions or
-- text. A phrase of common words is found through its pairs rather than by reading the
-- positions of every row holding all its words (storage/sqlite/search/phrases.py). Rows are
-- removed with the 'delete' command and their terms, so that secure-delete can take the
-- words out of the pages (a contentless-delete table would leave them under tombstones).

CREATE VIRTUAL TABLE search_pairs USING fts5(
    terms,
    content = '',
    detail = none,
    tokenize = "ascii tokenchars '_'"
);
INSERT INTO search_pairs (search_pairs, rank) VALUES ('secure-delete', 1);

INSERT INTO search_pairs (rowid, terms)
SELECT rowid, sh_pair_terms(body, scope) FROM search_index;
