"""Queries and mutations over HTTP without Strawberry's per-request extension machinery.

`Schema.execute` builds, for every request, an execution context, one instance of each
schema extension (six here) and async context managers around parsing, validation and
execution, then hands graphql-core the document. On the hot read of bench/overhead.py that
was a sixth of the server's GraphQL time, for work that, with this server's extensions,
comes down to two cache look-ups and a name check.

`LeanPipeline` does exactly what `Schema.execute` does with those extensions, in the same
order and with the same errors, and nothing else:

1. the document, parsed with the token limit (MaxTokensLimiter) and cached by its text
   (ParserCache), together with its validation errors: graphql-core's rules, the limiters'
   rules (AddValidationRules: aliases, depth) and Strawberry's own two, as Strawberry's
   `validate_document` runs them (ValidationCache);
2. the operation: the one named, else the first (CannotGetOperationTypeError when there is
   none), and its type against the allowed ones (InvalidOperationTypeError);
3. the validation errors, and RequireOperationName's when the document holds several
   operations and the request named none;
4. graphql-core's `execute` on the cached document with the schema's executor class
   (FastExecutor), no field middleware, Strawberry's `is_awaitable`; an exception that
   escapes it becomes the result's only error, as in Strawberry.

Errors get their codes in graphql_http (ErrorCodes' `coded`). It is used only when every
extension of the schema is one of those it stands in for (`for_schema` checks, calling
each factory once): a schema with any other extension, or with operation directives,
goes through `Schema.execute` as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    execute,
    specified_rules,
)
from graphql.language.parser import parse
from graphql.validation import ASTValidationRule
from strawberry import Schema
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from .error_codes import BAD_USER_INPUT, ErrorCodes, RequireOperationName

SEVERAL_OPERATIONS = "The document holds several operations; name one in 'operationName'."
DOCUMENT_CACHE = 512

# Extensions whose whole effect on a query or mutation the pipeline reproduces.
_STANDS_IN_FOR = (
    ErrorCodes,
    ParserCache,
    ValidationCache,
    MaxTokensLimiter,
    AddValidationRules,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    RequireOperationName,
)


class Result:
    """What graphql_http reads of Strawberry's ExecutionResult."""

    __slots__ = ("data", "errors")

    def __init__(self, data: dict[str, Any] | None, errors: list[GraphQLError] | None) -> None:
        self.data = data
        self.errors = errors


class _Prepared:
    __slots__ = ("document", "errors", "operations")

    def __init__(
        self,
        document: DocumentNode | None,
        errors: list[GraphQLError],
        operations: list[OperationDefinitionNode],
    ) -> None:
        self.document = document
        self.errors = errors
        self.operations = operations


class LeanPipeline:
    def __init__(
        self,
        schema: Schema,
        *,
        max_tokens: int | None,
        validation_rules: Sequence[type[ASTValidationRule]],
        require_operation_name: bool,
        cache_size: int = DOCUMENT_CACHE,
    ) -> None:
        self._schema = schema._schema
        self._executor_class = schema.execution_context_class
        self._max_tokens = max_tokens
        self._rules = (*specified_rules, *validation_rules)
        self._require_operation_name = require_operation_name
        self._cache_size = cache_size
        self._prepared: OrderedDict[str, _Prepared] = OrderedDict()

    @classmethod
    def for_schema(cls, schema: Schema) -> LeanPipeline | None:
        """The pipeline for the schema's extensions, or None when one of them (or an
        operation directive) does something the pipeline does not."""
        if schema.directives:
            return None
        extensions = [e if isinstance(e, SchemaExtension) else e() for e in schema.extensions]
        if any(type(e) not in _STANDS_IN_FOR for e in extensions):
            return None
        if not any(isinstance(e, ParserCache) for e in extensions) or not any(
            isinstance(e, ValidationCache) for e in extensions
        ):
            return None  # without the caches, Strawberry parses and validates every time
        max_tokens = [e.max_token_count for e in extensions if isinstance(e, MaxTokensLimiter)]
        rules = [
            rule
            for e in extensions
            if isinstance(e, AddValidationRules)
            for rule in e.validation_rules
        ]
        return cls(
            schema,
            max_tokens=min(max_tokens) if max_tokens else None,
            validation_rules=rules,
            require_operation_name=any(isinstance(e, RequireOperationName) for e in extensions),
        )

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Any,
        operation_name: str | None,
        allowed: Iterable[OperationType],
    ) -> Result:
        prepared = self._prepare(query)
        if prepared.document is None:
            return Result(None, prepared.errors)  # the document does not parse
        operations = prepared.operations
        if operation_name is not None:
            operation = next(
                (o for o in operations if o.name and o.name.value == operation_name), None
            )
        else:
            operation = operations[0] if operations else None
        if operation is None:
            raise CannotGetOperationTypeError(operation_name)
        operation_type = OperationType(operation.operation.value)
        if operation_type not in allowed:
            raise InvalidOperationTypeError(operation_type)
        errors = prepared.errors
        if self._require_operation_name and operation_name is None and len(operations) > 1:
            errors = [
                *errors,
                GraphQLError(SEVERAL_OPERATIONS, extensions={"code": BAD_USER_INPUT}),
            ]
        if errors:
            return Result(None, errors)
        if operation_name is None and operation.name is not None:
            operation_name = operation.name.value  # Strawberry names the first operation
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
            )
            if optimized_is_awaitable(result):
                result = await result
        except Exception as exc:  # as Strawberry: the error of the whole request
            error = (
                exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            )
            return Result(None, [error])
        return Result(result.data, result.errors)

    def _prepare(self, query: str) -> _Prepared:
        prepared = self._prepared.get(query)
        if prepared is not None:
            self._prepared.move_to_end(query)
            return prepared
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError as error:
            prepared = _Prepared(None, [error], [])
        except Exception as exc:  # as Strawberry's parsing step
            prepared = _Prepared(None, [GraphQLError(str(exc), original_error=exc)], [])
        else:
            errors = validate_document(self._schema, document, self._rules)
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            prepared = _Prepared(document, errors, operations)
        self._prepared[query] = prepared
        if len(self._prepared) > self._cache_size:
            self._prepared.popitem(last=False)
        return prepared
