"""Collections and indexes, created at start; creating them again is harmless.

Every listing walks an index that begins with `entity_id` (or, for what was shared with a
user, with the grantee's entity), in the order the listing returns. Sort keys are the
exact `*_us` integer microseconds (see codec), then `_id` as the tie-break of keyset
cursors.

An index is identified by its name: MongoDB answers `IndexOptionsConflict` when a name
is reused with other keys or options. To change an index, give it a new name here and
list the old name in RETIRED_INDEXES, which `ensure` drops.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING as ASC
from pymongo import DESCENDING as DESC
from pymongo.errors import CollectionInvalid, OperationFailure

SESSIONS = "sessions"
TURNS = "turns"
PINS = "pins"
SHARES = "shares"
LINK_VISITS = "share_link_visits"
AUDIT = "audit"
TEMPLATES = "templates"
COLLECTIONS = (SESSIONS, TURNS, PINS, SHARES, LINK_VISITS, AUDIT, TEMPLATES)

# How a sharded cluster splits each collection (ranged keys, entity first: an entity's data
# stays together, zones can pin an entity to a region, and a listing of one entity goes to
# the shards that hold it; the second field splits a large entity, and each key is the
# prefix of an index below, which sharding a non-empty collection requires). Reads that
# name only a session id (a session, its turns) go to every shard until the store passes
# the entity along. A collection absent here stays unsharded on the primary shard:
# shares (small, and looked up by token hash across entities, a unique index no shard key
# could prefix) and templates (a few per entity). A unique index of a sharded collection
# must begin with its shard key, or MongoDB refuses to create it (tests check this).
SHARD_KEYS: dict[str, list[tuple[str, Any]]] = {
    SESSIONS: [("entity_id", ASC), ("owner_id", ASC)],
    TURNS: [("entity_id", ASC), ("session_id", ASC)],
    PINS: [("entity_id", ASC), ("user_id", ASC)],
    LINK_VISITS: [("entity_id", ASC), ("user_id", ASC)],
    AUDIT: [("entity_id", ASC), ("actor_id", ASC)],
}

NAMESPACE_EXISTS = 48
INDEX_NOT_FOUND = 27

# (collection, name, keys, options)
INDEXES: list[tuple[str, str, list[tuple[str, Any]], dict[str, Any]]] = [
    # Sessions: the owner's list (archived or not), the entity-wide list, tags.
    (
        SESSIONS,
        "sessions_by_owner_archived_activity",
        [
            ("entity_id", ASC),
            ("owner_id", ASC),
            ("archived", ASC),
            ("last_activity_at_us", DESC),
            ("_id", DESC),
        ],
        {},
    ),
    (
        SESSIONS,
        "sessions_by_owner_activity",
        [("entity_id", ASC), ("owner_id", ASC), ("last_activity_at_us", DESC), ("_id", DESC)],
        {},
    ),
    (
        SESSIONS,
        "sessions_by_entity_activity",
        [("entity_id", ASC), ("last_activity_at_us", DESC), ("_id", DESC)],
        {},
    ),
    (
        SESSIONS,
        "sessions_by_entity_tag_activity",
        [("entity_id", ASC), ("tags", ASC), ("last_activity_at_us", DESC), ("_id", DESC)],
        {},
    ),
    # Retention: what has expired, oldest expiry first (the cleanup walks it in batches).
    # Not a TTL index: MongoDB's TTL monitor deletes without an audit event and leaves the
    # session's turns, pins and shares behind, so expiry is the cleanup's job (retention).
    (SESSIONS, "sessions_by_expiry", [("expires_at_us", ASC)], {}),
    # Sessions in the middle of a non-transactional create or delete (recovery finds them).
    (
        SESSIONS,
        "sessions_in_flight",
        [("state", ASC), ("created_at_us", ASC)],
        {"partialFilterExpression": {"state": {"$exists": True}}},
    ),
    # Turns: the arbiter of concurrent appends (one turn per seq of a session), under the
    # shard key; and the order within a session, for reads that name only the session.
    (
        TURNS,
        "turns_unique_seq_by_entity_session",
        [("entity_id", ASC), ("session_id", ASC), ("seq", ASC)],
        {"unique": True},
    ),
    (TURNS, "turns_by_session_and_seq", [("session_id", ASC), ("seq", ASC)], {}),
    # Search (see search.py): the stems of each row, behind its scope.
    (
        TURNS,
        "turns_terms_by_owner",
        [("entity_id", ASC), ("owner_id", ASC), ("terms", ASC)],
        {},
    ),
    (TURNS, "turns_terms_by_entity", [("entity_id", ASC), ("terms", ASC)], {}),
    (SESSIONS, "sessions_title_terms", [("entity_id", ASC), ("title_terms", ASC)], {}),
    # Right to erasure: the sessions a user took part in, the turns they gave feedback on.
    (SESSIONS, "sessions_by_participant", [("entity_id", ASC), ("participants", ASC)], {}),
    (
        TURNS,
        "turns_by_feedback_user",
        [("entity_id", ASC), ("feedback.user_id", ASC)],
        {"partialFilterExpression": {"feedback.user_id": {"$exists": True}}},
    ),
    # ... and, for a person of one entity, what they did in sessions of others, and every
    # feedback item written since people carry their entity (codec.py).
    (
        SESSIONS,
        "sessions_by_external_participant",
        [("external_participants.entity_id", ASC), ("external_participants.user_id", ASC)],
        {"partialFilterExpression": {"external_participants": {"$exists": True}}},
    ),
    (
        TURNS,
        "turns_by_external_feedback",
        [("feedback.entity_id", ASC), ("feedback.user_id", ASC)],
        {"partialFilterExpression": {"feedback.entity_id": {"$exists": True}}},
    ),
    # Pins, per user.
    (
        PINS,
        "pins_by_user_session",
        [("entity_id", ASC), ("user_id", ASC), ("session_id", ASC)],
        {"unique": True},
    ),
    (
        PINS,
        "pins_by_user_time",
        [("entity_id", ASC), ("user_id", ASC), ("pinned_at_us", DESC), ("session_id", DESC)],
        {},
    ),
    (PINS, "pins_by_session", [("session_id", ASC)], {}),
    # Shares.
    (
        SHARES,
        "shares_by_grantee",
        [
            ("grantee_entity_id", ASC),
            ("grantee_kind", ASC),
            ("grantee_user_id", ASC),
            ("created_at_us", DESC),
        ],
        {},
    ),
    (SHARES, "shares_by_session", [("session_id", ASC), ("created_at_us", ASC), ("_id", ASC)], {}),
    (
        SHARES,
        "shares_by_token_hash",
        [("token_hash", ASC)],
        {"unique": True, "partialFilterExpression": {"token_hash": {"$exists": True}}},
    ),
    (
        SHARES,
        "shares_due_to_expire",
        [("expiry_recorded_at_us", ASC), ("revoked_at_us", ASC), ("expires_at_us", ASC)],
        {},
    ),
    (SHARES, "shares_with_outbox", [("outbox._id", ASC)], {"sparse": True}),
    # Sessions whose tag change's event has not reached `audit` yet (recovery).
    (SESSIONS, "sessions_with_outbox", [("outbox._id", ASC)], {"sparse": True}),
    # Who opened which LINK share.
    (
        LINK_VISITS,
        "visits_by_user_share",
        [("entity_id", ASC), ("user_id", ASC), ("share_id", ASC)],
        {"unique": True},
    ),
    (
        LINK_VISITS,
        "visits_by_user_session",
        [("entity_id", ASC), ("user_id", ASC), ("session_id", ASC)],
        {},
    ),
    (LINK_VISITS, "visits_by_session", [("session_id", ASC)], {}),
    (LINK_VISITS, "visits_with_outbox", [("outbox._id", ASC)], {"sparse": True}),
    # Audit, newest first per entity, and by each filter.
    (AUDIT, "audit_by_entity_time", [("entity_id", ASC), ("at_us", DESC), ("_id", DESC)], {}),
    (
        AUDIT,
        "audit_by_entity_target",
        [("entity_id", ASC), ("target", ASC), ("at_us", DESC), ("_id", DESC)],
        {},
    ),
    (
        AUDIT,
        "audit_by_entity_actor",
        [("entity_id", ASC), ("actor_id", ASC), ("at_us", DESC), ("_id", DESC)],
        {},
    ),
    (
        AUDIT,
        "audit_by_entity_action",
        [("entity_id", ASC), ("action", ASC), ("at_us", DESC), ("_id", DESC)],
        {},
    ),
    # Templates admins defined: a name once per entity and chat app (by its key), which is
    # also the listing's order.
    (
        TEMPLATES,
        "templates_by_entity_app_name",
        [("entity_id", ASC), ("chat_app_id", ASC), ("name_key", ASC)],
        {"unique": True},
    ),
    (TEMPLATES, "templates_with_outbox", [("outbox._id", ASC)], {"sparse": True}),
]


# Indexes earlier versions created and nothing reads any more: `ensure` drops them.
# The `$text` indexes {entity_id: 1, content: "text"} and {entity_id: 1, title: "text"}:
# search reads the stems indexes above (search.py) or Atlas Search (atlas.py), never
# `$text`, and a text index adds one key per distinct word of every turn to the hottest
# write path (appending a turn), beside the two stems indexes that already hold them.
# The TTL indexes on `expires_at` (sessions and turns): they removed expired data without
# an audit event, and turns and sessions apart; expiry now hides a session at once (the
# policy) and the retention cleanup removes it with its turns, pins and shares, audited.
# The unique {session_id, seq} index: a sharded turns collection (SHARD_KEYS) can only keep
# unique indexes that begin with its shard key, so the arbiter now begins with entity_id.
RETIRED_INDEXES: list[tuple[str, str]] = [
    (TURNS, "turns_by_session_seq"),
    (SESSIONS, "sessions_title_text"),
    (TURNS, "turns_content_text"),
    (SESSIONS, "sessions_expiry_ttl"),
    (TURNS, "turns_expiry_ttl"),
]


async def ensure(db: Any) -> None:
    """Create the collections and indexes that are missing, drop the retired ones. Several
    instances may run this at once: creating what exists or dropping what is gone is a
    no-op, and a lost race is ignored."""
    existing = set(await db.list_collection_names())
    for name in COLLECTIONS:
        if name in existing:
            continue
        try:
            await db.create_collection(name)
        except CollectionInvalid:
            pass  # created by another instance since we listed
        except OperationFailure as exc:
            if exc.code != NAMESPACE_EXISTS:
                raise
    for collection, name, keys, options in INDEXES:
        await db[collection].create_index(keys, name=name, **options)
    for collection, name in RETIRED_INDEXES:
        if name not in await db[collection].index_information():
            continue
        try:
            await db[collection].drop_index(name)
        except OperationFailure as exc:
            if exc.code != INDEX_NOT_FOUND:  # else another instance dropped it meanwhile
                raise
