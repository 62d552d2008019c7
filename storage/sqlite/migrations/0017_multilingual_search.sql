-- Search in every language (issue 23): the index holds the tokens of domain/words.py
-- (words with their marks, pairs of CJK and Thai characters, emoji, C++ and C#), folded,
-- as one space-separated string per row that FTS5's `ascii` tokenizer cuts back into the
-- same tokens; stems are no longer in the index but in the vocabulary, per language:
-- search_words counts the rows holding each word (typos and rarity look there) and
-- search_stems links each word to its stem in the language of the rows it came from
-- (storage/sqlite/search/vocabulary.py). The phrase index is rebuilt from the new tokens.
-- Each row's text is read from its turn or title (an index row's rowid holds the turn's
-- or the session's below bit 40), its rowid and scope from the old index.

CREATE TEMP VIEW search_texts AS
SELECT i.rowid AS rowid, i.scope AS scope, sh_body(t.content, t.tool_invocations) AS body
FROM search_index i JOIN turns t ON t.rowid = (i.rowid & 1099511627775)
WHERE i.rowid > 0
UNION ALL
SELECT i.rowid, i.scope, s.title
FROM search_index i JOIN sessions s ON s.rowid = ((-i.rowid) & 1099511627775)
WHERE i.rowid < 0 AND s.title IS NOT NULL;

CREATE VIRTUAL TABLE search_tokens USING fts5(
    body,
    scope,
    language UNINDEXED,
    tokenize = "ascii tokenchars '+#'"
);
INSERT INTO search_tokens (search_tokens, rank) VALUES ('secure-delete', 1);
INSERT INTO search_tokens (search_tokens, rank) VALUES ('automerge', 0);
INSERT INTO search_tokens (search_tokens, rank) VALUES ('usermerge', 8);

INSERT INTO search_tokens (rowid, body, scope, language)
SELECT rowid, sh_index_words(body), scope, sh_language(body) FROM search_texts;

CREATE TABLE search_words (
    word TEXT PRIMARY KEY,
    rows INTEGER NOT NULL
) WITHOUT ROWID;
-- Near spellings of a word are looked for among the words of its first letter and about
-- its length.
CREATE INDEX search_words_by_shape ON search_words (substr(word, 1, 1), length(word));

INSERT INTO search_words (word, rows)
SELECT w.value, count(*) FROM search_texts i, json_each(sh_distinct_words(i.body)) w
GROUP BY w.value;

CREATE TABLE search_stems (
    language TEXT NOT NULL,
    stem TEXT NOT NULL,
    word TEXT NOT NULL,
    PRIMARY KEY (language, stem, word)
) WITHOUT ROWID;
CREATE INDEX search_stems_by_word ON search_stems (word);

INSERT OR IGNORE INTO search_stems (language, stem, word)
SELECT l.value ->> 0, l.value ->> 1, l.value ->> 2
FROM search_texts i, json_each(sh_stem_links(i.body)) l;

DROP VIEW search_texts;

PRAGMA secure_delete = OFF;
DROP TABLE search_index;
DROP TABLE search_pairs;
PRAGMA secure_delete = ON;
ALTER TABLE search_tokens RENAME TO search_index;

CREATE VIRTUAL TABLE search_pairs USING fts5(
    terms,
    content = '',
    detail = none,
    tokenize = "ascii tokenchars '_+#'"
);
INSERT INTO search_pairs (search_pairs, rank) VALUES ('secure-delete', 1);
INSERT INTO search_pairs (search_pairs, rank) VALUES ('automerge', 0);
INSERT INTO search_pairs (search_pairs, rank) VALUES ('usermerge', 8);

INSERT INTO search_pairs (rowid, terms)
SELECT rowid, sh_pair_terms(body, scope) FROM search_index;
