"""The executor every operation of the seam runs on, fast path or not: Strawberry's
execution context (its resolve info), counting the objects of the response against the
request's budget.

What a response may hold is counted as it is made (`ObjectBudget`): every object
completed, the usual way or by a plan of the fast path (fast_path.py), spends one from the
request's budget, and a request that runs out ends with LIMIT_EXCEEDED. The query limits
estimate the same thing before execution from declared list sizes; this is the bound when
a list holds more than its declaration says (a session's shares, a turn's tool messages in
a context). A subscription's events each get a budget of their own.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from graphql import GraphQLObjectType

from ...domain.errors import LimitExceeded
from .private import STRAWBERRY_SCHEMA, load

if TYPE_CHECKING:
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext as _Strawberry
else:
    _Strawberry = load(STRAWBERRY_SCHEMA, "StrawberryGraphQLCoreExecutionContext")


class ObjectBudget:
    """The objects one response may still hold."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, objects: int) -> None:
        self.left -= objects
        if self.left < 0:
            raise LimitExceeded(
                f"The response would hold more than {self.limit:,} objects; ask for smaller "
                "pages (first/last, maxTurns), fewer lists or fewer aliases."
            )


# The budget of the request (or subscription event) being executed: the seam sets it
# around execution, executors read it when they are made.
OBJECT_BUDGET: ContextVar[ObjectBudget | None] = ContextVar("object_budget", default=None)


class BudgetedExecutor(_Strawberry):
    """Strawberry's executor, spending the budget of the response for every object.

    The seam hands every executor class the same keyword arguments (`document_plans`,
    `fallbacks`: what the fast path keeps and counts); this one has no use for them."""

    def __init__(
        self,
        *args: Any,
        document_plans: dict[Any, Any] | None = None,
        fallbacks: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._budget = OBJECT_BUDGET.get()

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        assert isinstance(executor, BudgetedExecutor)
        executor._budget = OBJECT_BUDGET.get()  # each event's own
        return executor

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        if self._budget is not None:
            self._budget.spend(1)
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )
