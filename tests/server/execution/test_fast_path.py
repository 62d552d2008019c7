"""FastExecutor answers exactly what graphql-core's executor answers, errors included,
and takes the short way only where it may."""

from __future__ import annotations

import asyncio
import enum
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from sessionhub.auth.permissions import auth_field
from sessionhub.domain.models import Principal
from sessionhub.schema.build import build_schema
from sessionhub.schema.directives import Auth
from sessionhub.schema.scalars import AWARE_DATETIME
from sessionhub.server.execution.fast_path import FastExecutor


@dataclass
class FakeContext:
    principal: Principal | None
    request_id: str = "req-1"


@strawberry.enum
class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@strawberry.type
class Usage:
    tokens: int
    cost: float


@strawberry.type
class Tool:
    name: str
    input: JSON | None
    ok: bool


@strawberry.type
class Item:
    id: strawberry.ID
    seq: int
    color: Color
    label: str | None
    at: datetime
    usage: Usage
    tools: list[Tool]
    tags: list[str] | None

    @strawberry.field
    def shout(self) -> str:
        return self.label.upper() if self.label else "NONE"


@strawberry.type
class Page:
    items: list[Item]
    total: int


def _item(n: int, **changes: Any) -> Item:
    values: dict[str, Any] = {
        "id": strawberry.ID(f"i{n}"),
        "seq": n,
        "color": Color.GREEN if n % 2 else Color.RED,
        "label": None if n % 3 == 0 else f"item {n}",
        "at": datetime(2026, 1, n, 9, 30, tzinfo=UTC),
        "usage": Usage(tokens=n * 10, cost=n / 7),
        "tools": [Tool(name=f"t{k}", input={"q": [k, None, "x"]}, ok=k % 2 == 0) for k in range(2)],
        "tags": ["a", "b"] if n % 2 else None,
    }
    values.update(changes)
    return Item(**values)


PAGES: dict[str, Page] = {
    "good": Page(items=[_item(n) for n in range(1, 6)], total=5),
    # A non-null field left null, a value Int cannot represent, a list that is a string.
    "null_seq": Page(items=[_item(1), _item(2, seq=None)], total=2),
    "bad_int": Page(items=[_item(1), _item(2, usage=Usage(tokens=2**40, cost=1.0))], total=2),
    "bad_enum": Page(items=[_item(1, color="purple")], total=1),
    "not_a_list": Page(items=[_item(1, tags="ab")], total=1),
    "coercible": Page(
        items=[_item(1, seq=3.0, label=12, usage=Usage(tokens=True, cost=2))], total=1
    ),
}


def _page(key: str) -> Page:
    return PAGES[key]


@strawberry.type
class Query:
    page: Page = auth_field(_page)


@strawberry.type
class Mutation:
    noop: str = auth_field(lambda: "ok")


FAST = build_schema([Query], [Mutation], execution_context_class=FastExecutor)
PLAIN = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    schema_directives=[Auth],
    config=StrawberryConfig(scalar_map={datetime: AWARE_DATETIME}),
)

SELECTION = """
query Q($key: String!, $withTools: Boolean!, $skipUsage: Boolean = false) {
  page(key: $key) {
    __typename
    total
    items {
      ...Ident
      color
      label
      at
      also: seq
      usage @skip(if: $skipUsage) { tokens cost __typename }
      tools @include(if: $withTools) { name input ok }
      tags
    }
    more: items { id shout }
  }
}
fragment Ident on Item { id seq }
"""


# No directive: the plans serve every request of this document.
SHARED_SELECTION = """
query Q($key: String!) {
  page(key: $key) { total items { ...Ident color label at usage { tokens cost } tags } }
}
fragment Ident on Item { id seq }
"""


def run(
    schema: strawberry.Schema, variables: dict[str, Any], query: str = SELECTION
) -> tuple[Any, list[Any]]:
    result = asyncio.run(
        schema.execute(
            query, variable_values=variables, context_value=FakeContext(Principal("u", "e"))
        )
    )
    return result.data, [e.formatted for e in result.errors or ()]


@pytest.mark.parametrize("key", sorted(PAGES))
@pytest.mark.parametrize("with_tools", [True, False])
@pytest.mark.parametrize("skip_usage", [True, False])
def test_same_answer_as_graphql_core(key: str, with_tools: bool, skip_usage: bool) -> None:
    variables = {"key": key, "withTools": with_tools, "skipUsage": skip_usage}
    assert run(FAST, variables) == run(PLAIN, variables)


def test_errors_keep_their_path(monkeypatch: pytest.MonkeyPatch) -> None:
    _, errors = run(FAST, {"key": "null_seq", "withTools": False})
    assert [e["path"] for e in errors] == [["page", "items", 1, "seq"]]


def _slow_types(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the objects graphql-core's own execute_fields completes, by type."""
    counts: Counter[str] = Counter()
    original = StrawberryGraphQLCoreExecutionContext.execute_fields

    def counting(self: Any, parent_type: Any, *args: Any) -> Any:
        counts[parent_type.name] += 1
        return original(self, parent_type, *args)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_fields", counting)
    return counts


def test_plain_attribute_objects_take_the_short_way(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _slow_types(monkeypatch)
    run(FAST, {"key": "good", "withTools": True})
    # The root has @auth and Page selects `more { shout }` (a resolver): graphql-core
    # executes those, and the Items under `more`; the Items under `items`, their Usage
    # and Tools take the short way.
    assert counts == Counter({"Query": 1, "Page": 1, "Item": 5})


def test_an_error_hands_the_object_back(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _slow_types(monkeypatch)
    run(FAST, {"key": "null_seq", "withTools": False})
    # The second Item fails the short way: graphql-core completes it again, finds the
    # null in `seq: Int!` and lets it propagate (up to `page`, all non-null), so nothing
    # after it is completed.
    assert counts["Item"] == 1


def test_plans_shared_between_requests_give_each_its_own_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = ["good", "coercible", "null_seq", "good", "bad_int", "coercible"]
    expected = [run(PLAIN, {"key": key}, SHARED_SELECTION) for key in keys]
    counts = _slow_types(monkeypatch)
    assert [run(FAST, {"key": key}, SHARED_SELECTION) for key in keys] == expected
    # graphql-core's own executor ran only for the root (each time) and, in null_seq and
    # bad_int, for the objects on the way to the value the short way gave up on.
    assert counts == Counter({"Query": len(keys), "Page": 2, "Item": 2, "Usage": 1})
