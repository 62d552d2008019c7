-- A person is a user id AND its entity: acme's gina and globex's gina are two people
-- (issue 20, point 5). What a session keeps of someone of ANOTHER entity than its own (an
-- external grantee who wrote, gave feedback or verified through a share) now names that
-- entity; a reference without one is a person of the session's own entity:
--
--   turns.author_entity_id         the author's entity, NULL: the session's
--   sessions.participants          users of the session's entity (unchanged)
--   sessions.external_participants JSON [{"entity_id", "user_id"}] of the others, or NULL
--   turns.feedback[].entity_id     the giver's entity, absent: the session's
--   turns.verification.verified_by_entity_id   likewise for the verifier
--   audit.details.actorEntityId    the actor's entity, absent: the event's (as before)
--
-- Rows written before this migration hold bare user ids, and an external grantee's turn
-- cannot be told from one by a user of the session's entity with the same id: they are
-- taken to be people of the session's entity, which is all the old code could mean for
-- owners and internal users. That reading is exactly what NULL or absent means above, so
-- no row is rewritten and the upgrade takes as long at 10M turns as at ten (ADD COLUMN
-- changes only the schema; the one index below reads the sessions table once).

ALTER TABLE turns ADD COLUMN author_entity_id TEXT;
ALTER TABLE sessions ADD COLUMN external_participants TEXT;

-- Erasure of a person finds the sessions of other entities they took part in.
CREATE INDEX sessions_with_external_participants ON sessions (id)
    WHERE external_participants IS NOT NULL;
