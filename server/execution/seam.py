"""The one GraphQL execution seam: how every transport (HTTP, operations over the
WebSocket, subscription events) turns a document into a result, the same way and with the
same errors.

`Schema.execute` builds, for every request, an execution context, one instance of each
schema extension and async context managers around parsing, validation and execution,
then hands graphql-core the document. On the hot read of bench/overhead.py that was a sixth
of the server's GraphQL time. The seam does the same steps, with the same errors:

1. the document, prepared by `Documents` (documents.py): refused by its length, parsed with
   the token limit, measured against the query limits, validated by the rules Strawberry
   uses (graphql-core's and its OneOf, MaybeNull), and kept in the one bounded cache;
2. `check`: the operation, the one named, else the only one (CannotGetOperationTypeError
   when there is none), and its type against those the transport allows
   (InvalidOperationTypeError); the errors of the document, an error when the document
   holds several operations and the request named none (Strawberry would silently run the
   first, which may be a mutation the client did not mean), and the cost of an operation
   whose page sizes come from variables;
3. `run`: graphql-core's `execute` on the cached document with the seam's executor
   class (the fast path's FastExecutor, or BudgetedExecutor with the fast path off), no
   field middleware, Strawberry's `is_awaitable`, and the request's budget of objects (the
   query cost limit, enforced as the response is made); an exception that escapes it
   becomes the result's only error, as in Strawberry;
4. `subscribe`: the source stream (the subscription field's resolver, with the
   subscriber's context) and an `EventRenderer`, which executes the selection for each
   event with the same executor class, budget and error handling, without a context: what
   it renders is shared by every subscriber of a group (realtime.hub).

`execute` is 1 to 3 from the text (HTTP); the WebSocket calls the steps itself, to tell
subscriptions from the rest and count what a subscription keeps before it starts. The
errors are returned as they are; each transport gives them their codes (error_codes.coded)
with its request id.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeGuard

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    create_source_event_stream,
    execute,
    execute_subscription_event,
)
from strawberry.types.graphql import OperationType

from ..error_codes import BAD_USER_INPUT
from .config import SeamConfig
from .documents import SEVERAL_OPERATIONS, Documents, Prepared
from .executor import OBJECT_BUDGET, BudgetedExecutor, ObjectBudget
from .fast_path import Fallbacks, FastExecutor
from .private import graphql_schema, load

if TYPE_CHECKING:
    from collections.abc import Iterable

    import strawberry

    def is_awaitable(value: object) -> TypeGuard[Awaitable[Any]]: ...

    from strawberry.schema.exceptions import (
        CannotGetOperationTypeError,
        InvalidOperationTypeError,
    )
else:
    is_awaitable = load("strawberry.execution", "optimized_is_awaitable")
    CannotGetOperationTypeError = load(
        "strawberry.schema.exceptions", "CannotGetOperationTypeError"
    )
    InvalidOperationTypeError = load("strawberry.schema.exceptions", "InvalidOperationTypeError")

__all__ = [
    "CannotGetOperationTypeError",
    "EventRenderer",
    "InvalidOperationTypeError",
    "Operation",
    "Result",
    "Seam",
    "Subscription",
]

_ALL = frozenset(OperationType)


class Result:
    """What a transport reads of an execution: data and errors, uncoded."""

    __slots__ = ("data", "errors")

    def __init__(self, data: dict[str, Any] | None, errors: list[GraphQLError] | None) -> None:
        self.data = data
        self.errors = errors


class Operation:
    """A request's operation that passed `check`: ready to execute or to subscribe.
    `name` is the operation's own name when the request named none (Strawberry's)."""

    __slots__ = ("name", "node", "prepared", "variables")

    def __init__(
        self,
        prepared: Prepared,
        node: OperationDefinitionNode,
        name: str | None,
        variables: dict[str, Any] | None,
    ) -> None:
        self.prepared = prepared
        self.node = node
        self.name = name
        self.variables = variables

    @property
    def is_subscription(self) -> bool:
        return self.node.operation.value == "subscription"

    def declared_variables(self) -> dict[str, Any]:
        """The request's variables that the operation declares (a subscription keeps only
        those for its life)."""
        declared = {v.variable.name.value for v in self.node.variable_definitions or ()}
        return {k: v for k, v in (self.variables or {}).items() if k in declared}


class Subscription:
    """A subscription that started: `source` is what its field returned (a hub feed),
    `render` executes its selection for one event of it."""

    __slots__ = ("render", "source")

    def __init__(self, source: Any, render: EventRenderer) -> None:
        self.source = source
        self.render = render


class Seam:
    """Prepares, checks and executes the documents of one schema under one configuration."""

    def __init__(self, schema: strawberry.Schema, config: SeamConfig) -> None:
        self.config = config
        self.schema: GraphQLSchema = graphql_schema(schema)
        self.documents = Documents(self.schema, config.documents)
        self.executor_class: type[BudgetedExecutor] = (
            FastExecutor if config.fast_path else BudgetedExecutor
        )
        self.fallbacks = Fallbacks()
        self.max_objects = config.max_objects

    def prepare(self, text: str) -> Prepared:
        return self.documents.prepare(text)

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Any,
        operation_name: str | None,
        allowed: Iterable[OperationType],
    ) -> Result:
        """A query or mutation, from its text (`allowed` holds no subscription)."""
        checked = self.check(self.documents.prepare(query), variables, operation_name, allowed)
        if isinstance(checked, Result):
            return checked
        return await self.run(checked, context)

    def check(
        self,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        allowed: Iterable[OperationType] = _ALL,
    ) -> Operation | Result:
        """The operation the request runs, or the errors that refuse it."""
        if prepared.document is None:
            return Result(None, prepared.errors)  # the document does not parse
        node = prepared.operation(operation_name)
        if node is None:
            if operation_name is None and prepared.operations:
                several = GraphQLError(SEVERAL_OPERATIONS, extensions={"code": BAD_USER_INPUT})
                return Result(None, [*prepared.errors, several])
            raise CannotGetOperationTypeError(operation_name)
        operation_type = OperationType(node.operation.value)
        if operation_type not in allowed:
            raise InvalidOperationTypeError(operation_type)
        errors = prepared.errors
        if not errors:
            errors = prepared.cost_errors(node, variables)
        if errors:
            return Result(None, errors)
        if operation_name is None and node.name is not None:
            operation_name = node.name.value  # Strawberry names the first operation
        return Operation(prepared, node, operation_name, variables)

    async def run(self, operation: Operation, context: Any) -> Result:
        """Execute a query or mutation that passed `check`."""
        budget = OBJECT_BUDGET.set(ObjectBudget(self.max_objects))
        try:
            result = execute(
                self.schema,
                operation.prepared.document,  # type: ignore[arg-type]
                None,
                context,
                operation.variables,
                operation.name,
                executor_class=self.executor_class,
                is_awaitable=is_awaitable,
                document_plans=operation.prepared.plans,
                fallbacks=self.fallbacks,
            )
            if is_awaitable(result):
                result = await result
        except Exception as exc:  # as Strawberry: the error of the whole request
            return Result(None, [_request_error(exc)])
        finally:
            OBJECT_BUDGET.reset(budget)
        assert isinstance(result, ExecutionResult)
        return Result(result.data, result.errors)

    async def subscribe(self, operation: Operation, context: Any) -> Subscription | Result:
        """Start a subscription that passed `check`: its source stream, or the errors that
        kept it from starting."""
        variables = operation.declared_variables()
        try:
            executor = self._build(operation, variables, context)
            if isinstance(executor, list):
                return Result(None, executor)  # the variables' values
            stream = create_source_event_stream(executor)
            if is_awaitable(stream):
                stream = await stream
        except Exception as exc:
            return Result(None, [_request_error(exc)])
        if isinstance(stream, ExecutionResult):
            return Result(
                None, stream.errors or [GraphQLError("The subscription could not start.")]
            )
        return Subscription(stream, EventRenderer(self, operation, variables))

    def _build(self, operation: Operation, variables: dict[str, Any] | None, context: Any) -> Any:
        return self.executor_class.build(
            self.schema,
            operation.prepared.document,  # type: ignore[arg-type]
            None,
            context,
            variables,
            operation.name,
            is_awaitable=is_awaitable,
            document_plans=operation.prepared.plans,
            fallbacks=self.fallbacks,
        )


class EventRenderer:
    """Executes a subscription's selection for one event, with the subscription's
    document, variables and operation, and no context (what it renders is shared by every
    subscriber of the group)."""

    __slots__ = ("_executor", "_operation", "_seam", "_variables")

    def __init__(self, seam: Seam, operation: Operation, variables: dict[str, Any]) -> None:
        self._seam = seam
        self._operation = operation
        self._variables = variables
        self._executor: Any = None

    async def __call__(self, payload: Any) -> Result:
        seam = self._seam
        budget = OBJECT_BUDGET.set(ObjectBudget(seam.max_objects))
        try:
            executor = self._executor
            if executor is None:
                built = seam._build(self._operation, self._variables, None)
                if isinstance(built, list):
                    return Result(None, built)
                executor = self._executor = built
            result = execute_subscription_event(executor.build_per_event_executor(payload))
            if is_awaitable(result):
                result = await result
        except Exception as exc:
            return Result(None, [_request_error(exc)])
        finally:
            OBJECT_BUDGET.reset(budget)
        assert isinstance(result, ExecutionResult)
        return Result(result.data, result.errors)


def _request_error(exc: Exception) -> GraphQLError:
    return exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
