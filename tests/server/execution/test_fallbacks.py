"""The fast path is a setting, and never silent: every time it hands work back to
graphql-core's executor, the seam counts why, and /metrics shows the counts."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry
from starlette.testclient import TestClient
from strawberry.types.graphql import OperationType

from sessionhub.auth.permissions import auth_field
from sessionhub.auth.tokens import TokenIssuer
from sessionhub.domain.models import Principal
from sessionhub.schema.build import build_schema
from sessionhub.server.app import create_app
from sessionhub.server.execution import Seam, SeamConfig
from sessionhub.server.execution import fast_path as fast_path_module
from sessionhub.server.execution.documents import DocumentLimits
from sessionhub.server.execution.executor import BudgetedExecutor
from sessionhub.server.execution.fast_path import FastExecutor
from sessionhub.server.execution.list_sizes import ListSize
from sessionhub.server.execution.query_limits import QueryLimits
from sessionhub.server.settings import Settings, load_settings, token_config


@dataclass
class FakeContext:
    principal: Principal | None
    request_id: str = "req-1"


class Broken:
    @property
    def label(self) -> str:
        raise RuntimeError("a bug under the plan")


@strawberry.type
class Item:
    seq: int
    label: str


@strawberry.type
class Page:
    items: list[Item]


PAGES: dict[str, Any] = {
    "good": Page(items=[Item(seq=n, label=f"item {n}") for n in range(3)]),
    "null_seq": Page(items=[Item(seq=1, label="a"), Item(seq=None, label="b")]),  # type: ignore[arg-type]
    "broken": Page(items=[Item(seq=1, label="a"), Broken()]),  # type: ignore[list-item]
    "long": Page(items=[Item(seq=n, label="x") for n in range(50)]),
}


def _page(key: str) -> Page:
    return PAGES[key]


@strawberry.type
class Query:
    page: Page = auth_field(_page)


@strawberry.type
class Mutation:
    noop: str = auth_field(lambda: "ok")


SCHEMA = build_schema([Query], [Mutation])
QUERY = "query Q($key: String!) { page(key: $key) { items { seq label } } }"
# What the query limits assume of Page.items (one item), so that the response's own
# budget is what refuses the long page.
SMALL = SeamConfig(
    DocumentLimits(query=QueryLimits(max_cost=20, list_sizes={"Page.items": ListSize(1, 1)}))
)


def _answer(seam: Seam, key: str) -> tuple[Any, list[dict[str, Any]]]:
    result = asyncio.run(
        seam.execute(
            QUERY, {"key": key}, FakeContext(Principal("u", "e")), None, {OperationType.QUERY}
        )
    )
    return result.data, [e.formatted for e in result.errors or ()]


@pytest.mark.parametrize(
    ("key", "reason"),
    [("good", None), ("null_seq", "value"), ("broken", "error"), ("long", "budget")],
)
def test_each_fallback_is_counted_and_answers_as_the_usual_way(
    key: str, reason: str | None
) -> None:
    fast = Seam(SCHEMA, SMALL)
    slow = Seam(SCHEMA, SeamConfig(SMALL.documents, fast_path=False))
    assert fast.executor_class is FastExecutor and slow.executor_class is BudgetedExecutor
    assert _answer(fast, key) == _answer(slow, key)
    # Counted per object handed back: the page, then the item again inside it.
    counted = {r for r, n in fast.fallbacks.snapshot().items() if n}
    assert counted == ({reason} if reason else set())
    assert not any(slow.fallbacks.snapshot().values())


def test_the_setting_chooses_the_executor(settings_factory: Any) -> None:
    assert isinstance(settings_factory(), Settings)
    on = create_app(settings_factory())
    off = create_app(settings_factory(fast_path=False))
    assert on.state.seam.executor_class is FastExecutor
    assert off.state.seam.executor_class is BudgetedExecutor


def test_the_setting_reads_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("SESSIONHUB_FAST_PATH", "false")
    assert load_settings(dev_secret_file=tmp_path / "secret").fast_path is False


def _fallbacks(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics").text
    return {
        reason: float(value)
        for reason, value in re.findall(
            r'^sessionhub_fast_path_fallbacks_total\{reason="(\w+)"\} (\S+)$', text, re.M
        )
    }


def test_metrics_count_the_fallbacks(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """As when Strawberry renames the resolver of its basic fields: the answers stay the
    same, the fast path falls back, and /metrics says so."""
    query = "{ chatApps { id name settings { allowSharing maxSessionHistory } } }"
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {TokenIssuer(token_config(settings)).issue('a', 'e')}"}
        assert _fallbacks(client) == {
            "budget": 0.0,
            "error": 0.0,
            "unrecognised_field": 0.0,
            "value": 0.0,
        }
        expected = client.post("/graphql", json={"query": query}, headers=headers).json()
        assert _fallbacks(client)["unrecognised_field"] == 0
        monkeypatch.setattr(fast_path_module, "BASIC_RESOLVER", "renamed_in_an_upgrade")
        # A new document (the plans of the first are kept with it).
        again = client.post("/graphql", json={"query": query + " "}, headers=headers).json()
        assert again == expected
        assert _fallbacks(client)["unrecognised_field"] >= 1
