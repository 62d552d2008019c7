"""The one preparation step of GraphQL documents: length, tokens, the query limits, the
validation rules, and a cache bounded by bytes and keyed by digest."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from graphql import get_introspection_query
from starlette.testclient import TestClient

from sessionhub.auth.tokens import TokenIssuer
from sessionhub.server.app import create_app
from sessionhub.server.execution.documents import BYTES_PER_CHARACTER, DocumentLimits, Documents
from sessionhub.server.settings import Settings, token_config

# Documents of every shape a client (or an attacker) sends, each under the length limit.
SHAPES = {
    "introspection": get_introspection_query(),
    "dense fields": "{ " + " ".join(f"x{i}" for i in range(6_000)) + " }",
    "aliases": "{ " + " ".join(f"a{i}: me {{ userId }}" for i in range(1_500)) + " }",
    "nested": "{ sessions { edges { node { id title turns { nodes { id content } } } } } }" * 1,
    "arguments": "{ "
    + " ".join(f'a{i}: session(id: "{i:08d}") {{ id }}' for i in range(800))
    + " }",
    "fragments": "{ ...F0 }\n"
    + "\n".join(f"fragment F{i} on Query {{ ...F{i + 1} me {{ userId }} }}" for i in range(99))
    + "\nfragment F99 on Query { me { userId } }",
    "comments": "\n".join(f"# {i} " + "c" * 60 for i in range(900)) + "\n{ me { userId } }",
    "strings": '{ session(id: "' + "s" * 60_000 + '") { id } }',
    "variables": "query("
    + ", ".join(f"$v{i}: String" for i in range(1_500))
    + ") { me { userId } }",
}


@pytest.fixture
def schema(settings: Settings):
    return create_app(settings).state.schema._schema


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_size_estimate_is_an_upper_bound(schema, shape: str) -> None:
    """What the cache counts for a document is at least what it holds once prepared
    (measured over a few copies, each made distinct by a comment as an attacker would)."""
    documents = Documents(schema, DocumentLimits(cache_bytes=0))
    documents.prepare("# warm-up: what graphql-core computes once per schema\n" + SHAPES[shape])
    texts = [f"# {n}\n{SHAPES[shape]}" for n in range(5)]
    gc.collect()
    tracemalloc.start()
    try:
        prepared = [documents.prepare(text) for text in texts]
        gc.collect()  # validation's visitors refer to each other: garbage, not held
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(p.document is not None for p in prepared)
    estimated = sum(p.size for p in prepared)
    assert held <= estimated, (held / len(texts), len(texts[0]))


def test_the_cache_is_keyed_by_digest_and_bounded_by_bytes(schema) -> None:
    budget = 2 * 1024 * 1024
    documents = Documents(schema, DocumentLimits(cache_bytes=budget))
    first = documents.prepare("# 0\n{ me { userId } }")
    assert documents.prepare("# 0\n{ me { userId } }") is first  # a hit
    for n in range(1, 2_000):
        documents.prepare(f"# {n}\n{{ me {{ userId }} }}")
        assert documents.cached_bytes <= budget
    assert all(isinstance(k, bytes) and len(k) == 16 for k in documents._cache)
    assert documents.prepare("# 0\n{ me { userId } }") is not first  # long evicted
    # A document that would take an eighth of the budget is prepared but not kept.
    large = "{ " + " ".join(f"x{i}" for i in range(3_000)) + " }"
    assert len(large) * BYTES_PER_CHARACTER > budget // 8
    before = documents.cached_bytes
    documents.prepare(large)
    assert documents.cached_bytes == before


def test_refusals_come_with_their_code(schema) -> None:
    documents = Documents(schema, DocumentLimits(max_characters=2_000, max_tokens=300))
    too_long = documents.prepare("{ me { userId } }" + " " * 2_000)
    assert too_long.document is None
    assert too_long.errors[0].extensions == {"code": "LIMIT_EXCEEDED"}
    assert "2,017 characters; the limit is 2,000" in too_long.errors[0].message
    # graphql-core words its token limit in the message only: this fails loudly if that
    # changes, instead of the refusal silently losing its code.
    too_many = documents.prepare("{ " + "x " * 400 + "}")
    assert too_many.errors[0].extensions == {"code": "LIMIT_EXCEEDED"}
    assert "more than 300 tokens" in too_many.errors[0].message
    invalid = documents.prepare("{ nope }")
    assert invalid.document is not None
    assert "Cannot query field 'nope'" in invalid.errors[0].message


@pytest.fixture
def client(tmp_path: Path, settings_factory) -> Iterator[tuple[TestClient, str]]:
    settings = settings_factory(document_cache_bytes=0)
    with TestClient(create_app(settings)) as client:
        yield client, TokenIssuer(token_config(settings)).issue("alice", "acme")


def test_nothing_outlives_a_document_the_cache_no_longer_holds(
    client: tuple[TestClient, str],
) -> None:
    """The executor's plans live with the prepared document. Before, a module-level table
    of plans kept the nodes (and so the whole text) of the last 2,048 documents alive,
    whatever the document cache did."""
    http, token = client
    headers = {"Authorization": f"Bearer {token}"}
    selection = "me { userId entityId roles } chatApps { id name }"

    def run(n: int) -> None:
        query = f"# {n} {'p' * 20_000}\n{{ {selection} }}"
        response = http.post("/graphql", json={"query": query}, headers=headers)
        assert "errors" not in response.json()

    run(0)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for n in range(1, 200):
            run(n)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 200 documents of 20 KB each: kept, they would hold 4 MB of text alone.
    assert after - before < 1_000_000, after - before
