"""Queries and mutations, over HTTP and over the WebSocket, without Strawberry's
per-request extension machinery.

`Schema.execute` builds, for every request, an execution context, one instance of each
schema extension and async context managers around parsing, validation and execution,
then hands graphql-core the document. On the hot read of bench/overhead.py that was a sixth
of the server's GraphQL time. `LeanPipeline` does the same steps, with the same errors:

1. the document, prepared by `Documents` (documents.py): refused by its length, parsed with
   the token limit, measured against the query limits, validated by graphql-core's rules
   and Strawberry's own two (OneOf, MaybeNull), and cached;
2. the operation: the one named, else the first (CannotGetOperationTypeError when there is
   none), and its type against the allowed ones (InvalidOperationTypeError);
3. the errors of the document, an error when the document holds several operations and
   the request named none (Strawberry would silently run the first, which may be a
   mutation the client did not mean), and the cost of an operation whose page sizes come
   from variables;
4. graphql-core's `execute` on the cached document with the schema's executor class
   (FastExecutor), no field middleware, Strawberry's `is_awaitable`, and the request's
   budget of objects (the query cost limit, enforced as the response is made); an
   exception that escapes it becomes the result's only error, as in Strawberry.

Errors get their codes from the transport (ErrorCodes' `coded`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError, execute
from strawberry import Schema
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from ..schema.fast_execution import OBJECT_BUDGET, ObjectBudget
from .documents import SEVERAL_OPERATIONS, Documents, Prepared
from .error_codes import BAD_USER_INPUT


class Result:
    """What graphql_http reads of Strawberry's ExecutionResult."""

    __slots__ = ("data", "errors")

    def __init__(self, data: dict[str, Any] | None, errors: list[GraphQLError] | None) -> None:
        self.data = data
        self.errors = errors


class LeanPipeline:
    def __init__(self, schema: Schema, documents: Documents, *, max_objects: int) -> None:
        self._schema = schema._schema
        self._executor_class = schema.execution_context_class
        self._documents = documents
        self._max_objects = max_objects

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Any,
        operation_name: str | None,
        allowed: Iterable[OperationType],
    ) -> Result:
        return await self.run(
            self._documents.prepare(query), variables, context, operation_name, allowed
        )

    async def run(
        self,
        prepared: Prepared,
        variables: dict[str, Any] | None,
        context: Any,
        operation_name: str | None,
        allowed: Iterable[OperationType],
    ) -> Result:
        """`execute` for a document already prepared (the WebSocket prepares it first to
        tell subscriptions from the rest)."""
        if prepared.document is None:
            return Result(None, prepared.errors)  # the document does not parse
        operation = prepared.operation(operation_name)
        if operation is None:
            if operation_name is None and prepared.operations:
                several = GraphQLError(SEVERAL_OPERATIONS, extensions={"code": BAD_USER_INPUT})
                return Result(None, [*prepared.errors, several])
            raise CannotGetOperationTypeError(operation_name)
        operation_type = OperationType(operation.operation.value)
        if operation_type not in allowed:
            raise InvalidOperationTypeError(operation_type)
        errors = prepared.errors
        if not errors:
            errors = prepared.cost_errors(operation, variables)
        if errors:
            return Result(None, errors)
        if operation_name is None and operation.name is not None:
            operation_name = operation.name.value  # Strawberry names the first operation
        budget = OBJECT_BUDGET.set(ObjectBudget(self._max_objects))
        try:
            result = execute(
                self._schema,
                prepared.document,
                None,
                context,
                variables,
                operation_name,
                executor_class=self._executor_class,
                is_awaitable=optimized_is_awaitable,
                document_plans=prepared.plans,
            )
            if optimized_is_awaitable(result):
                result = await result
        except Exception as exc:  # as Strawberry: the error of the whole request
            error = (
                exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            )
            return Result(None, [error])
        finally:
            OBJECT_BUDGET.reset(budget)
        return Result(result.data, result.errors)
