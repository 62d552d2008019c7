"""Gives every GraphQL error an `extensions.code`, and masks the unexpected ones.

Expected failures are domain errors and keep their message. Errors in the request
itself (syntax, unknown fields, wrong enum values, bad variables) have no path and are
BAD_USER_INPUT. Anything else is a defect: the client gets a generic message with the
request id, and the log gets the traceback.
"""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from ..domain.errors import DomainError

BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL_SERVER_ERROR"


def coded(error: GraphQLError, request_id: str) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if isinstance(original, DomainError):
        return _with(error, original.message, original.code, original.extensions)
    if error.path is None and (
        original is None or isinstance(original, (GraphQLError, ValueError, TypeError))
    ):
        # No path: the error arose while reading the request (syntax, validation,
        # coercing a variable's value), before any resolver ran.
        return _with(error, error.message, BAD_USER_INPUT)
    # Looked up here rather than cached at import, so that reconfiguring logging (and
    # structlog's capture in tests) always reaches this rare path.
    structlog.get_logger("sessionhub.errors").error(
        "graphql.unexpected_error",
        request_id=request_id,
        path=error.path,
        message=error.message,
        exc_info=original,
    )
    return _with(
        error, f"Internal error; quote request id {request_id} when reporting it.", INTERNAL
    )


def _with(
    error: GraphQLError, message: str, code: str, extra: dict[str, object] | None = None
) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={**(error.extensions or {}), **(extra or {}), "code": code},
    )


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        context = self.execution_context.context
        request_id = getattr(context, "request_id", "-")
        result.errors = [coded(e, request_id) for e in result.errors]
