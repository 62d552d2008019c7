"""The MongoDB store's shard keys (storage/mongo/indexes.py SHARD_KEYS) against its
indexes: what a sharded cluster would refuse is caught here, without one."""

from __future__ import annotations

from sessionhub.storage.mongo.indexes import COLLECTIONS, INDEXES, SHARD_KEYS


def test_every_unique_index_of_a_sharded_collection_begins_with_its_shard_key() -> None:
    for collection, name, keys, options in INDEXES:
        shard_key = SHARD_KEYS.get(collection)
        if options.get("unique") and shard_key is not None:
            assert keys[: len(shard_key)] == shard_key, (
                f"{name}: a unique index of sharded {collection} must begin with {shard_key}"
            )


def test_every_shard_key_has_an_index_that_supports_it() -> None:
    for collection, shard_key in SHARD_KEYS.items():
        assert collection in COLLECTIONS
        supporting = [
            name
            for c, name, keys, _ in INDEXES
            if c == collection and keys[: len(shard_key)] == shard_key
        ]
        assert supporting, f"no index begins with {collection}'s shard key {shard_key}"


def test_every_shard_key_begins_with_the_entity() -> None:
    assert all(key[0][0] == "entity_id" for key in SHARD_KEYS.values())
