"""What the test server cannot run of Atlas Search, checked so that the gap is known and a
mongoeco that closes it fails here loudly: the Atlas contract (MONGODB_ATLAS_SEARCH=1 in
tests/storage/conftest.py) should then run against it too.

mongoeco 4.11 has no search index commands over the wire (createSearchIndexes,
listSearchIndexes), so atlas_search_index.json cannot be applied to it and the `$search`
pipeline of atlas.py finds no index. Its in-process search indexes take only `mappings`,
`analyzer` and `searchAnalyzer`, not the custom analyzer (`analyzers`: regexSplit,
icuFolding, snowballStemming) the definitions use."""

from __future__ import annotations

import pymongo
import pytest
from pymongo.errors import OperationFailure

from sessionhub.storage.mongo.atlas import search_index_specs


@pytest.mark.parametrize("command", ["createSearchIndexes", "listSearchIndexes"])
def test_mongoeco_has_no_search_index_commands_over_the_wire(
    mongo_database_url: str, command: str
) -> None:
    spec = search_index_specs()[0]
    arguments = (
        {"indexes": [{"name": spec["name"], "definition": spec["definition"]}]}
        if command == "createSearchIndexes"
        else {}
    )
    with pymongo.MongoClient(mongo_database_url) as client:
        db = client.get_default_database()
        db[spec["collection"]].insert_one({"_id": "x"})
        with pytest.raises(OperationFailure, match=f"unsupported wire command: {command}"):
            db.command(command, spec["collection"], **arguments)


def test_the_definitions_use_a_custom_analyzer() -> None:
    assert all("analyzers" in spec["definition"] for spec in search_index_specs())
