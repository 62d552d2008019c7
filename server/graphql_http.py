"""GraphQL over HTTP at /graphql (GET and POST), after the GraphQL-over-HTTP spec: one of
the transports of the execution seam (execution.Seam).

Written on Starlette directly rather than through Strawberry's view so that every
failure of the request itself (no token, a body that is not JSON, a mutation over GET)
answers with a coded GraphQL error, and the body is parsed and written with orjson.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import structlog
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.types.graphql import OperationType

from ..auth.tokens import TokenVerifier
from ..domain.clock import new_id
from ..domain.errors import LimitExceeded, Unauthenticated
from ..domain.models import Principal
from ..resolvers.context import Context
from .error_codes import BAD_USER_INPUT, coded
from .execution import Seam
from .execution.documents import no_operation
from .execution.seam import CannotGetOperationTypeError, InvalidOperationTypeError

log = structlog.get_logger("sessionhub.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


class RequestProblem(Exception):
    def __init__(self, status: int, message: str, code: str = BAD_USER_INPUT) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class GraphQLHTTP:
    def __init__(
        self,
        seam: Seam,
        verifier: TokenVerifier,
        make_context: Callable[[Principal, str], Context],
        graphiql_page: Callable[[], Response] | None,
        *,
        max_body_bytes: int,
    ) -> None:
        self._seam = seam
        self._verifier = verifier
        self._make_context = make_context
        self._graphiql_page = graphiql_page
        self._max_body_bytes = max_body_bytes

    async def handle(self, request: Request) -> Response:
        request_id = request.headers.get("x-request-id") or new_id()
        media_type = _response_media_type(request)
        if (
            request.method == "GET"
            and self._graphiql_page is not None
            and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        ):
            return self._graphiql_page()
        try:
            # Who asks, before anything of the body is read: a request nobody may make
            # costs no more than its headers.
            principal = self._verifier.principal_from_header(request.headers.get("authorization"))
            query, variables, operation_name = await _read_operation(request, self._max_body_bytes)
        except RequestProblem as problem:
            return _error_response(
                problem.status, problem.message, problem.code, media_type, request_id
            )
        except Unauthenticated as exc:
            response = _error_response(401, exc.message, exc.code, media_type, request_id)
            response.headers["www-authenticate"] = 'Bearer realm="sessionhub"'
            return response

        context = self._make_context(principal, request_id)
        allowed = (
            {OperationType.QUERY}
            if request.method == "GET"
            else {OperationType.QUERY, OperationType.MUTATION}
        )
        try:
            result = await self._seam.execute(query, variables, context, operation_name, allowed)
        except CannotGetOperationTypeError:
            # Several operations and no name is a validation error; this is none at all.
            message = no_operation(operation_name, 0)
            return _error_response(400, message, BAD_USER_INPUT, media_type, request_id)
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                return _error_response(
                    400,
                    "Subscriptions run over the WebSocket at /graphql "
                    "(graphql-transport-ws or graphql-ws).",
                    BAD_USER_INPUT,
                    media_type,
                    request_id,
                )
            return _error_response(
                405,
                f"A {exc.operation_type.value} cannot be sent with GET; use POST.",
                BAD_USER_INPUT,
                media_type,
                request_id,
                headers={"allow": "POST"},
            )

        # A request error (syntax, validation, variables) means execution never started:
        # the errors carry no path, there is no `data` entry, and the spec makes it a 400
        # under graphql-response+json. Field errors keep `data` (null or partial) and a 200.
        request_error = result.data is None and all(e.path is None for e in result.errors or ())
        payload: dict[str, Any] = {}
        if result.errors:
            # The seam returns errors uncoded: codes and masking are the transport's.
            payload["errors"] = [coded(e, request_id).formatted for e in result.errors]
        if not request_error:
            payload["data"] = result.data
        status = 400 if request_error and media_type == GRAPHQL_RESPONSE else 200
        headers = {"x-request-id": request_id}
        retry_after = _retry_after(payload.get("errors"))
        if retry_after is not None:
            status = 429
            headers["retry-after"] = str(retry_after)
        return Response(
            orjson.dumps(payload), status_code=status, media_type=media_type, headers=headers
        )


def _retry_after(errors: list[dict[str, Any]] | None) -> int | None:
    """The longest wait when every error of the response is a rate limit's (they carry
    `retryAfter`): the request was held back by nothing else, and a 429 with Retry-After
    tells any HTTP client to come back later. With any other error among them the status
    stays what that error makes it; the rate-limited fields still carry `retryAfter`."""
    waits = [(error.get("extensions") or {}).get("retryAfter") for error in errors or ()]
    seconds = [wait for wait in waits if isinstance(wait, int)]
    if not seconds or len(seconds) < len(waits):
        return None
    return max(seconds)


def _response_media_type(request: Request) -> str:
    """graphql-response+json when the client asks for it; plain JSON for everyone else,
    as the spec asks of servers during the transition."""
    if GRAPHQL_RESPONSE in request.headers.get("accept", ""):
        return GRAPHQL_RESPONSE
    return JSON


async def _read_operation(
    request: Request, max_body_bytes: int
) -> tuple[str, dict[str, Any] | None, str | None]:
    if request.method == "GET":
        params = request.query_params
        raw_variables = params.get("variables")
        try:
            variables = orjson.loads(raw_variables) if raw_variables else None
        except orjson.JSONDecodeError as exc:
            raise RequestProblem(
                400, f"The 'variables' parameter is not valid JSON: {exc}."
            ) from exc
        return _operation(params.get("query"), variables, params.get("operationName"))

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise RequestProblem(
            415, "Send the operation as JSON with 'Content-Type: application/json'."
        )
    body = await _read_body(request, max_body_bytes)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestProblem(400, f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(document, dict):
        raise RequestProblem(400, "The request body must be a JSON object with a 'query'.")
    return _operation(
        document.get("query"), document.get("variables"), document.get("operationName")
    )


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused as too large by its declared length before a byte of it is read,
    and while it streams in when it has none (or lies)."""
    too_large = RequestProblem(
        413, f"The request body exceeds {max_bytes:,} bytes.", LimitExceeded.code
    )
    declared = request.headers.get("content-length")
    if declared is not None:
        # isdigit() alone takes "²" and other digits int() refuses.
        if not (declared.isascii() and declared.isdigit()):
            raise RequestProblem(400, "The Content-Length header is not a number of bytes.")
        if int(declared) > max_bytes:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _operation(
    query: Any, variables: Any, operation_name: Any
) -> tuple[str, dict[str, Any] | None, str | None]:
    if not isinstance(query, str) or not query.strip():
        raise RequestProblem(400, "The request has no 'query' string.")
    if variables is not None and not isinstance(variables, dict):
        raise RequestProblem(400, "'variables' must be a JSON object.")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestProblem(400, "'operationName' must be a string.")
    return query, variables, operation_name


def _error_response(
    status: int,
    message: str,
    code: str,
    media_type: str,
    request_id: str,
    headers: dict[str, str] | None = None,
) -> Response:
    error = GraphQLError(message, extensions={"code": code})
    return Response(
        orjson.dumps({"errors": [error.formatted]}),
        status_code=status,
        media_type=media_type,
        headers={"x-request-id": request_id, **(headers or {})},
    )
