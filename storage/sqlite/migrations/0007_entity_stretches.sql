-- The rows of one entity in the search index move to one stretch of rowids: the entity's
-- number above bit 40, the turn's rowid (a title: minus the entity's and the session's)
-- below. An entity-wide search then bounds the rowid instead of intersecting the
-- entity's scope token, whose posting list holds most of the index
-- (storage/sqlite/search/scope.py).

CREATE TABLE search_entities (
    number INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL UNIQUE
);

INSERT INTO search_entities (entity_id)
SELECT entity_id FROM sessions GROUP BY entity_id ORDER BY min(rowid);

CREATE VIRTUAL TABLE search_index_by_entity USING fts5(
    body,
    scope,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO search_index_by_entity (search_index_by_entity, rank) VALUES ('secure-delete', 1);

INSERT INTO search_index_by_entity (rowid, body, scope)
SELECT (e.number << 40) + i.rowid, i.body, i.scope
FROM search_index i
JOIN turns t ON t.rowid = i.rowid
JOIN sessions s ON s.id = t.session_id
JOIN search_entities e ON e.entity_id = s.entity_id
WHERE i.rowid > 0;

INSERT INTO search_index_by_entity (rowid, body, scope)
SELECT -((e.number << 40) + s.rowid), i.body, i.scope
FROM search_index i
JOIN sessions s ON s.rowid = -i.rowid
JOIN search_entities e ON e.entity_id = s.entity_id
WHERE i.rowid < 0;

-- The old index holds the same text as the new one: zeroing its pages as they are freed
-- (secure_delete, which the store keeps on) would only double the upgrade's writes.
PRAGMA secure_delete = OFF;
DROP TABLE search_index;
PRAGMA secure_delete = ON;
ALTER TABLE search_index_by_entity RENAME TO search_index;
