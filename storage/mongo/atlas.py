"""The Atlas Search index on turns, defined in atlas_search_index.json, and the step that
creates it or brings it up to date (`sessionhub mongo apply-search-index`).

Atlas Search indexes are built by Atlas (or mongot beside MongoDB 8.x Community); a
plain mongod answers the command with an error, reported here as StoreUnavailable.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pymongo.errors import PyMongoError

from ...domain.errors import StoreUnavailable
from . import driver

DEFINITION_FILE = "atlas_search_index.json"


def search_index_spec() -> dict[str, Any]:
    return json.loads((resources.files(__package__) / DEFINITION_FILE).read_text())


async def apply_search_index(url: str, database: str) -> str:
    """Create the index, or update its definition when it exists. Returns what was done."""
    spec = search_index_spec()
    client = driver.connect(url)
    try:
        collection = client[database][spec["collection"]]
        existing = await collection.list_search_indexes(spec["name"]).to_list(None)
        if existing:
            await collection.update_search_index(spec["name"], spec["definition"])
            return f"updated search index {spec['name']!r} on {database}.{spec['collection']}"
        await collection.create_search_index(
            {"name": spec["name"], "definition": spec["definition"]}
        )
        return f"created search index {spec['name']!r} on {database}.{spec['collection']}"
    except PyMongoError as exc:
        raise StoreUnavailable(f"The search index could not be applied: {exc}") from exc
    finally:
        driver.close(client)
