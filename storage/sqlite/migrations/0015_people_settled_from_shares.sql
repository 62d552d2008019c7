-- People written before migration 0014 (bare user ids) whose entity the stored trail
-- settles (issue 20, point 5). 0014 read every bare id as a person of the session's
-- entity A; an external grantee's old turn therefore read as A's user with the same id,
-- whose erasure emptied it. Since 0014 the current code writes every person with their
-- entity (author_entity_id, a feedback item's entity_id, a verification's
-- verified_by_entity_id), so a bare one here was written before entities were recorded,
-- or by the code of 0014 itself, which wrote A's own people bare too: a bare id may be
-- A's person or a grantee's either way. Here a bare user id u in a session S of entity A
-- is rewritten as u of entity E (turns.author_entity_id, the feedback item's entity_id,
-- S's external_participants instead of its participants) only on positive evidence that
-- E's u acted on S and none that a u of A could have written there:
--
--   * S has (or had: revoked and expired ones count) an EXTERNAL share with INTERACT to
--     u of E, and no such share to u of any other entity; u is not S's owner;
--   * E's u is seen acting on S: an event of A's audit trail about S whose actor is u
--     with actorEntityId E (a read of S, which the trail records for everyone but the
--     owner), at a time one of those shares was live;
--   * every bare turn and feedback item of u in S falls within the time one of those
--     shares was live (created_at up to its revocation or expiry): one outside it was not
--     E's u;
--   * nothing says a person of A with the id u could have written in S: no USER share of S
--     names u; no ENTITY share with INTERACT covers S; no INTERACT link share of S was
--     opened by a u of another entity than E; no turn, feedback item or verification in S
--     names u of A (written since 0014 with the entity, or a bare verification: only the
--     owner, admins and services grade); A's audit trail shows no u of A acting on S, and
--     no u of A with a reach beyond their own sessions anywhere in A: an admin's or a
--     service's (erasing a user, defining templates, reading someone else's session with
--     MANAGE or INTERACT access, deleting, tagging, archiving, completing, reopening or
--     sharing a session they do not own, or one whose owner the trail no longer knows).
--
-- What stays as it was (a person of A), because the trail cannot tell or leaves doubt:
--   * everything of u in S when any rule above does not hold: E's u never seen acting on
--     S (a turn a service of A wrote on behalf of a u of A, or one an admin or service of
--     A named u wrote, is then never taken for the grantee's), two external entities, an
--     ENTITY or LINK share that let others in, a turn outside the share's time, a u of A
--     who reads others' sessions with INTERACT access (a service, or a collaborator
--     through a share, which the trail does not tell apart) ...;
--   * verifications (only the owner, admins and services grade: not external people,
--     save an external service, which the trail cannot tell from A's).
-- What is relabelled and yet may be wrong: a turn a service of A wrote on behalf of a u
-- of A who has no trace in A's trail, in a session whose external grantee with the same
-- id did act on it within the share's time. Nothing stored tells those apart.
--
-- All of it is set-based and reads only the sessions that have an external INTERACT
-- share, through their indexes, and each remaining candidate's events in the trail.

-- Every INTERACT grant to a person of another entity, with the time it was live.
CREATE TEMP TABLE people_external_grants AS
SELECT sh.session_id, s.entity_id AS session_entity_id, s.owner_id,
       sh.grantee_entity_id AS entity_id, sh.grantee_user_id AS user_id,
       sh.created_at AS live_from,
       min(coalesce(sh.revoked_at, 9223372036854775807),
           coalesce(sh.expires_at, 9223372036854775807)) AS live_until
FROM shares sh JOIN sessions s ON s.id = sh.session_id
WHERE sh.grantee_kind = 'EXTERNAL' AND sh.mode = 'INTERACT'
  AND sh.grantee_user_id IS NOT NULL AND sh.grantee_entity_id IS NOT NULL
  AND sh.grantee_entity_id != s.entity_id;

CREATE INDEX temp.people_external_grants_by_person
    ON people_external_grants (session_id, user_id);

-- One reading per (session, user id): one other entity, never the owner.
CREATE TEMP TABLE people_settled AS
SELECT session_id, session_entity_id, user_id, min(entity_id) AS entity_id
FROM people_external_grants
WHERE user_id != owner_id
GROUP BY session_id, user_id
HAVING count(DISTINCT entity_id) = 1;

CREATE UNIQUE INDEX temp.people_settled_by_person ON people_settled (session_id, user_id);

-- Only where E's u acted on S while a share was live.
DELETE FROM people_settled
WHERE NOT EXISTS (
    SELECT 1 FROM audit a INDEXED BY audit_by_entity_target
    WHERE a.entity_id = people_settled.session_entity_id
      AND a.target = 'session:' || people_settled.session_id
      AND a.actor_id = people_settled.user_id
      AND a.details ->> 'actorEntityId' = people_settled.entity_id
      AND EXISTS (
            SELECT 1 FROM people_external_grants g
            WHERE g.session_id = people_settled.session_id
              AND g.user_id = people_settled.user_id
              AND a.at BETWEEN g.live_from AND g.live_until));

-- Users of the sessions' entities the trail shows with a reach beyond their own sessions.
-- Each user's events are read once, through audit_by_entity_actor; JSON is parsed only
-- for the few actions it decides. The owner of an event's session is the session's, or,
-- once it is gone, the one its deletion event names.
CREATE TEMP TABLE people_privileged AS
SELECT p.session_entity_id AS entity_id, p.user_id
FROM (SELECT DISTINCT session_entity_id, user_id FROM people_settled) p
WHERE EXISTS (
    SELECT 1 FROM audit a INDEXED BY audit_by_entity_actor
    WHERE a.entity_id = p.session_entity_id AND a.actor_id = p.user_id
      AND coalesce(a.details ->> 'actorEntityId', a.entity_id) = a.entity_id
      AND (a.action IN ('user.erased', 'template.created', 'template.updated',
                        'template.deleted')
           OR (a.action = 'session.read' AND a.details ->> 'access' IN ('MANAGE', 'INTERACT'))
           OR (a.action = 'session.deleted' AND a.details ->> 'ownerId' IS NOT a.actor_id)
           OR (a.action IN ('session.tagged', 'session.archived', 'session.completed',
                            'session.reopened', 'share.created', 'share.revoked')
               AND coalesce(
                     (SELECT o.owner_id FROM sessions o WHERE o.id = substr(a.target, 9)),
                     (SELECT d.details ->> 'ownerId' FROM audit d INDEXED BY audit_by_entity_target
                      WHERE d.entity_id = a.entity_id AND d.target = a.target
                        AND d.action = 'session.deleted'))
                   IS NOT a.actor_id)));

CREATE UNIQUE INDEX temp.people_privileged_by_person ON people_privileged (entity_id, user_id);

DELETE FROM people_settled
WHERE EXISTS (
        SELECT 1 FROM shares x
        WHERE x.session_id = people_settled.session_id
          AND ((x.grantee_kind = 'USER' AND x.grantee_user_id = people_settled.user_id)
            OR (x.grantee_kind = 'ENTITY' AND x.mode = 'INTERACT')
            OR (x.grantee_kind = 'LINK' AND x.mode = 'INTERACT' AND EXISTS (
                    SELECT 1 FROM share_link_visits v
                    WHERE v.share_id = x.id AND v.user_id = people_settled.user_id
                      AND v.entity_id != people_settled.entity_id))))
   OR EXISTS (
        SELECT 1 FROM audit a INDEXED BY audit_by_entity_target
        WHERE a.entity_id = people_settled.session_entity_id
          AND a.target = 'session:' || people_settled.session_id
          AND a.actor_id = people_settled.user_id
          AND coalesce(a.details ->> 'actorEntityId', a.entity_id) = a.entity_id)
   OR EXISTS (
        SELECT 1 FROM people_privileged r
        WHERE r.entity_id = people_settled.session_entity_id
          AND r.user_id = people_settled.user_id)
   OR EXISTS (
        SELECT 1 FROM turns t
        WHERE t.session_id = people_settled.session_id
          AND t.author_id = people_settled.user_id
          AND (t.author_entity_id = people_settled.session_entity_id
               OR (t.author_entity_id IS NULL AND NOT EXISTS (
                    SELECT 1 FROM people_external_grants g
                    WHERE g.session_id = t.session_id AND g.user_id = t.author_id
                      AND t.created_at BETWEEN g.live_from AND g.live_until))))
   OR EXISTS (
        SELECT 1 FROM turns t
        WHERE t.session_id = people_settled.session_id AND t.verification IS NOT NULL
          AND t.verification ->> 'verified_by' = people_settled.user_id
          AND coalesce(t.verification ->> 'verified_by_entity_id',
                       people_settled.session_entity_id) = people_settled.session_entity_id)
   OR EXISTS (
        SELECT 1 FROM turns t, json_each(t.feedback) f
        WHERE t.session_id = people_settled.session_id AND t.feedback IS NOT NULL
          AND f.value ->> 'user_id' = people_settled.user_id
          AND (f.value ->> 'entity_id' = people_settled.session_entity_id
               OR (f.value ->> 'entity_id' IS NULL AND NOT EXISTS (
                    SELECT 1 FROM people_external_grants g
                    WHERE g.session_id = t.session_id AND g.user_id = people_settled.user_id
                      AND f.value ->> 'at' BETWEEN g.live_from AND g.live_until))));

UPDATE turns
SET author_entity_id = (
    SELECT p.entity_id FROM people_settled p
    WHERE p.session_id = turns.session_id AND p.user_id = turns.author_id)
WHERE author_entity_id IS NULL
  AND session_id IN (SELECT session_id FROM people_settled)
  AND EXISTS (
        SELECT 1 FROM people_settled p
        WHERE p.session_id = turns.session_id AND p.user_id = turns.author_id);

UPDATE turns
SET feedback = (
    SELECT json_group_array(
               json(CASE WHEN p.entity_id IS NOT NULL AND f.value ->> 'entity_id' IS NULL
                         THEN json_set(f.value, '$.entity_id', p.entity_id)
                         ELSE f.value END)
               ORDER BY f.key)
    FROM json_each(turns.feedback) f
    LEFT JOIN people_settled p
        ON p.session_id = turns.session_id AND p.user_id = f.value ->> 'user_id')
WHERE feedback IS NOT NULL
  AND session_id IN (SELECT session_id FROM people_settled)
  AND EXISTS (
        SELECT 1 FROM json_each(turns.feedback) f
        JOIN people_settled p
            ON p.session_id = turns.session_id AND p.user_id = f.value ->> 'user_id'
        WHERE f.value ->> 'entity_id' IS NULL);

-- Who wrote in a session: the settled people leave its participants (the users of its
-- own entity) for its external participants, after those already there, in the order
-- of their first turn.
UPDATE sessions
SET participants = (
        SELECT json_group_array(j.value ORDER BY j.key)
        FROM json_each(sessions.participants) j
        WHERE NOT EXISTS (
            SELECT 1 FROM people_settled p
            WHERE p.session_id = sessions.id AND p.user_id = j.value)),
    external_participants = (
        SELECT nullif(json_group_array(json(person) ORDER BY place), '[]')
        FROM (
            SELECT e.value AS person, e.key AS place
            FROM json_each(coalesce(sessions.external_participants, '[]')) e
            UNION ALL
            SELECT json_object('entity_id', p.entity_id, 'user_id', p.user_id),
                   1000000000 + (SELECT min(t.seq) FROM turns t
                                 WHERE t.session_id = p.session_id
                                   AND t.author_id = p.user_id)
            FROM people_settled p
            WHERE p.session_id = sessions.id
              AND EXISTS (SELECT 1 FROM turns t
                          WHERE t.session_id = p.session_id AND t.author_id = p.user_id)
              AND NOT EXISTS (
                    SELECT 1 FROM json_each(coalesce(sessions.external_participants, '[]')) e
                    WHERE e.value ->> 'entity_id' = p.entity_id
                      AND e.value ->> 'user_id' = p.user_id)))
WHERE id IN (SELECT session_id FROM people_settled);

DROP TABLE temp.people_privileged;
DROP TABLE temp.people_settled;
DROP TABLE temp.people_external_grants;
