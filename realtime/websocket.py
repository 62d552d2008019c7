"""GraphQL over WebSocket at /graphql: `graphql-transport-ws` and the legacy `graphql-ws`
(subscriptions-transport-ws), chosen by subprotocol.

Written here rather than taken from Strawberry so that a subscription's selection runs
once per event for every subscriber that sent the same document and variables (see
realtime.hub): executing it per subscriber costs a quarter of a millisecond each, which a
thousand followers of one session turn into a quarter of a second per turn. A group's
payload is serialised once; each subscriber's message only differs by its id, spliced
into the shared text.

The connection:
- authenticates with the token in `connection_init` (`{"Authorization": "Bearer …"}` or
  `{"token": "…"}`; the upgrade request's Authorization header also works). A missing,
  bad or expired token closes with 4401 (graphql-ws: `connection_error` first);
- must send `connection_init` within the init timeout (else 4408);
- answers `ping` with `pong` (graphql-ws: the server sends `ka` periodically);
- runs subscriptions (shared), and also queries and mutations (one `next`, then
  `complete`), through the same @auth and policy checks as over HTTP.

Each connection writes through one sender task; every subscription counts what it has
queued there, and the hub ends one that falls too far behind (LIMIT_EXCEEDED with the seq
to resume from) instead of letting memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import jwt
import orjson
import strawberry
import structlog
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
)
from graphql.execution import Executor, create_source_event_stream, execute_subscription_event
from graphql.language import Visitor, visit
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.types.graphql import OperationType as StrawberryOperationType

from ..domain.clock import new_id
from ..domain.errors import DomainError, LimitExceeded, Unauthenticated
from ..domain.models import Principal
from .hub import EndReason, FeedEvent, Hub, Member, SessionFeed, SidebarFeed

log = structlog.get_logger("sessionhub.websocket")

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
SUBPROTOCOLS = (TRANSPORT_WS, LEGACY_WS)

BAD_USER_INPUT = "BAD_USER_INPUT"
MAX_OPERATIONS = 100
# What a connection's live subscriptions may keep: their prepared documents (each counted
# once, at the document cache's estimate of what a parsed document holds) and their
# variables. The rest of a message is gone once it is read; these stay for the
# subscription's life.
MAX_SUBSCRIPTION_BYTES = 4 * 1024 * 1024


class PreparedDocument(Protocol):
    """A document as the server's one preparation step leaves it (server.documents)."""

    document: DocumentNode | None
    errors: list[GraphQLError]
    size: int  # the bytes it holds, estimated

    def operation(self, name: str | None) -> OperationDefinitionNode | None: ...

    def no_operation(self, name: str | None) -> str: ...

    def cost_errors(
        self, operation: OperationDefinitionNode, variables: dict[str, Any] | None
    ) -> list[GraphQLError]: ...


class ExecutionOutcome(Protocol):
    data: dict[str, Any] | None
    errors: list[GraphQLError] | None


Execute = Callable[
    [PreparedDocument, dict[str, Any] | None, Any, str | None, set[StrawberryOperationType]],
    Awaitable[ExecutionOutcome],
]


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return GraphQLError(message, extensions={"code": code, **extensions}).formatted


class GraphQLWebSocket:
    """The WebSocket side of /graphql (a Starlette WebSocketRoute endpoint)."""

    def __init__(
        self,
        schema: strawberry.Schema,
        hub: Hub,
        authenticate: Callable[[str | None], Principal],
        make_context: Callable[[Principal, str], Any],
        code_error: Callable[[GraphQLError, str], GraphQLError],
        prepare: Callable[[str], PreparedDocument],
        execute: Execute,
        *,
        init_timeout: float = 10.0,
        keepalive: float = 15.0,
        max_connections_per_principal: int = 32,
    ) -> None:
        self.graphql_schema = schema._schema
        self.hub = hub
        self.authenticate = authenticate
        self.make_context = make_context
        self.code_error = code_error
        self.prepare = prepare
        self.execute = execute
        self.init_timeout = init_timeout
        self.keepalive = keepalive
        self.max_connections_per_principal = max_connections_per_principal
        # Open connections of each principal (entity, user): what one token may hold.
        self.by_principal: dict[tuple[str, str], int] = {}
        self.connections = 0
        self.operations = 0
        self.tasks = 0
        self.queued = 0
        hub.add_stats(self.stats)

    async def handle(self, websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        protocol = next((p for p in offered if p in SUBPROTOCOLS), None)
        if protocol is None:
            await websocket.close(4406, "Subprotocol not acceptable")
            return
        await websocket.accept(subprotocol=protocol)
        connection = _Connection(self, websocket, protocol)
        self.connections += 1
        try:
            await connection.run()
        finally:
            self.connections -= 1

    def stats(self) -> dict[str, int | float]:
        return {
            "ws_connections": self.connections,
            "ws_operations": self.operations,
            "ws_tasks": self.tasks,
            "ws_queued_messages": self.queued,
        }


class _RequestErrors(Exception):
    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message if errors else "invalid request")
        self.errors = errors


class _Connection:
    def __init__(self, endpoint: GraphQLWebSocket, websocket: WebSocket, protocol: str) -> None:
        self.endpoint = endpoint
        self.ws = websocket
        self.legacy = protocol == LEGACY_WS
        self.principal: Principal | None = None
        self.init_received = False
        self.operations: dict[str, _Operation] = {}
        self.outbox: deque[tuple[_Operation | None, str]] = deque()
        self.wake = asyncio.Event()
        self.sender: asyncio.Task[None] | None = None
        self.inflight: asyncio.Task[None] | None = None
        self.sending = False
        self.keepalive: asyncio.TimerHandle | None = None
        self.expiry: asyncio.TimerHandle | None = None
        self.closing: asyncio.Task[None] | None = None
        self.gone = False
        self.subscription_bytes = 0
        # Documents the connection's subscriptions keep, counted once each: id -> (the
        # document, kept alive so that its id is not reused; subscriptions; its size).
        self.documents: dict[int, tuple[Any, int, int]] = {}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.sender = loop.create_task(self._send_loop(), name="graphql-ws:send")
        self.endpoint.tasks += 1
        deadline = loop.time() + self.endpoint.init_timeout
        try:
            while True:
                if self.principal is None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise _Closed(4408, "Connection initialisation timeout")
                    try:
                        message = await asyncio.wait_for(self.ws.receive(), remaining)
                    except TimeoutError:
                        raise _Closed(4408, "Connection initialisation timeout") from None
                else:
                    message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None and message.get("bytes") is not None:
                    text = message["bytes"].decode(errors="replace")
                await self._dispatch(text or "")
        except _Closed as closed:
            await self._flush_and_close(closed.code, closed.reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            self._teardown()

    def _teardown(self) -> None:
        self.gone = True
        if self.principal is not None:
            who = (self.principal.entity_id, self.principal.user_id)
            left = self.endpoint.by_principal.get(who, 1) - 1
            if left > 0:
                self.endpoint.by_principal[who] = left
            else:
                self.endpoint.by_principal.pop(who, None)
            self.principal = None
        for operation in list(self.operations.values()):
            operation.stop()
        self.operations.clear()
        if self.keepalive is not None:
            self.keepalive.cancel()
        if self.expiry is not None:
            self.expiry.cancel()
        self.endpoint.queued -= len(self.outbox)
        self.outbox.clear()
        if self.sender is not None:
            self.sender.cancel()
        if self.inflight is not None:
            self.inflight.cancel()

    async def _flush_and_close(self, code: int, reason: str) -> None:
        self.gone = True
        if self.sender is not None:
            self.sender.cancel()
        if self.inflight is not None:
            await asyncio.wait([self.inflight], timeout=1.0)
        with contextlib.suppress(Exception):
            while self.outbox:
                _, frame = self.outbox.popleft()
                self.endpoint.queued -= 1
                await self.ws.send({"type": "websocket.send", "text": frame})
            await self.ws.close(code, reason)

    # Reading

    async def _dispatch(self, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _Closed(4400, "Invalid message received: not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise _Closed(4400, "Invalid message received: no type")
        kind = message["type"]
        if kind == "connection_init":
            await self._init(message.get("payload"))
        elif kind == "ping" and not self.legacy:
            self.send({"type": "pong"})
        elif kind == "pong" and not self.legacy:
            pass
        elif kind in ("subscribe", "start"):
            if (kind == "start") != self.legacy:
                raise _Closed(4400, f"Invalid message received: {kind}")
            self._start(message)
        elif kind in ("complete", "stop"):
            if (kind == "stop") != self.legacy:
                raise _Closed(4400, f"Invalid message received: {kind}")
            op_id = message.get("id")
            operation = self.operations.pop(op_id, None) if isinstance(op_id, str) else None
            if operation is not None:
                operation.stop()
        elif kind == "connection_terminate" and self.legacy:
            raise _Closed(1000, "Normal closure")
        else:
            raise _Closed(4400, f"Invalid message received: {kind}")

    async def _init(self, payload: Any) -> None:
        if self.init_received:
            raise _Closed(4429, "Too many initialisation requests")
        self.init_received = True
        if payload is not None and not isinstance(payload, dict):
            payload = None
        authorization = _authorization(payload, self.ws)
        try:
            principal = self.endpoint.authenticate(authorization)
        except Unauthenticated as exc:
            if self.legacy:
                self.send({"type": "connection_error", "payload": {"message": exc.message}})
            raise _Closed(4401, "Unauthorized") from None
        endpoint = self.endpoint
        who = (principal.entity_id, principal.user_id)
        if endpoint.by_principal.get(who, 0) >= endpoint.max_connections_per_principal:
            raise _Closed(
                4429,
                f"Too many connections: at most {endpoint.max_connections_per_principal} per user",
            )
        endpoint.by_principal[who] = endpoint.by_principal.get(who, 0) + 1
        self.principal = principal
        expires = _expiry(authorization)
        if expires is not None:
            # The connection lives no longer than its token: the client reconnects with a
            # fresh one (and afterSeq), as it would after any other drop.
            self.expiry = asyncio.get_running_loop().call_later(
                max(0.0, expires - time.time()), self._token_expired
            )
        self.send({"type": "connection_ack"})
        if self.legacy:
            self._keepalive()

    def _token_expired(self) -> None:
        if not self.gone:
            self.closing = asyncio.get_running_loop().create_task(
                self._flush_and_close(4401, "Unauthorized: the token has expired")
            )

    def _keepalive(self) -> None:
        if self.gone:
            return
        self.send({"type": "ka"})
        self.keepalive = asyncio.get_running_loop().call_later(
            self.endpoint.keepalive, self._keepalive
        )

    def _start(self, message: dict[str, Any]) -> None:
        op_id = message.get("id")
        if not isinstance(op_id, str) or not op_id:
            raise _Closed(4400, "Invalid message received: no id")
        if self.principal is None:
            raise _Closed(4401, "Unauthorized")
        if op_id in self.operations:
            if not self.legacy:
                raise _Closed(4409, f"Subscriber for {op_id[:24]} already exists")
            self.operations.pop(op_id).stop()
        operation = _Operation(self, op_id)
        payload = message.get("payload")
        if len(self.operations) >= MAX_OPERATIONS:
            operation.fail(
                [_error(f"At most {MAX_OPERATIONS} operations per connection.", LimitExceeded.code)]
            )
            return
        self.operations[op_id] = operation
        operation.start(payload if isinstance(payload, dict) else {})

    # Writing

    def send(self, message: dict[str, Any]) -> None:
        self.enqueue(None, orjson.dumps(message).decode())

    def enqueue(self, operation: _Operation | None, frame: str) -> None:
        if self.gone:
            return
        if not self.outbox and self.inflight is None and not self.sending:
            self._write_now(operation, frame)
            return
        self.outbox.append((operation, frame))
        self.endpoint.queued += 1
        self.wake.set()

    def _write_now(self, operation: _Operation | None, frame: str) -> None:
        """Write without waiting for the sender task. The ASGI send of a WebSocket that is
        not under backpressure completes without ever suspending, so it is run eagerly,
        right here; only if it suspends (the client reads slowly) does a task finish it,
        and later frames queue behind it, in order. For a thousand sockets this halves
        the fan-out time: no task wake-up per socket and per event."""
        try:
            self.inflight = _run_eagerly(self.ws.send({"type": "websocket.send", "text": frame}))
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.gone = True
            return
        if self.inflight is None:
            self._sent(operation)
            return
        self.endpoint.tasks += 1
        self.inflight.add_done_callback(lambda task: self._written(task, operation))

    def _written(self, task: asyncio.Task[None], operation: _Operation | None) -> None:
        self.inflight = None
        self.endpoint.tasks -= 1
        if task.cancelled() or task.exception() is not None:
            self.gone = True
            return
        self._sent(operation)
        if self.outbox:
            self.wake.set()

    def _sent(self, operation: _Operation | None) -> None:
        if operation is not None:
            operation.pending -= 1
            if operation.waiting is not None and operation.pending < operation.below:
                operation.waiting.set()

    async def _send_loop(self) -> None:
        send = self.ws.send
        outbox = self.outbox
        endpoint = self.endpoint
        try:
            while True:
                if not outbox or self.inflight is not None:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                operation, frame = outbox.popleft()
                endpoint.queued -= 1
                self.sending = True
                await send({"type": "websocket.send", "text": frame})
                self.sending = False
                self._sent(operation)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The receive side sees the disconnect and tears the connection down.
            self.gone = True
        finally:
            self.endpoint.tasks -= 1


class _Operation:
    """One subscribe / start: a hub member's sink, or a single query or mutation."""

    def __init__(self, connection: _Connection, op_id: str) -> None:
        self.connection = connection
        self.id = op_id
        id_json = orjson.dumps(op_id).decode()
        kind = "data" if connection.legacy else "next"
        self.prefix = f'{{"type":"{kind}","id":{id_json},"payload":'
        self.task: asyncio.Task[None] | None = None
        self.member: Member | None = None
        self.pending = 0
        self.waiting: asyncio.Event | None = None
        self.below = 0
        self.finished = False
        # What the subscription keeps: its document's id and its variables' bytes.
        self.kept: tuple[int, int] | None = None
        connection.endpoint.operations += 1

    def start(self, payload: dict[str, Any]) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self._run(payload), name=f"graphql-ws:op:{self.id[:32]}"
        )
        self.connection.endpoint.tasks += 1
        self.task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.connection.endpoint.tasks -= 1
        self.task = None

    def stop(self) -> None:
        """The client completed it or went away: forget it without a word."""
        if self.finished:
            return
        self._release()
        if self.task is not None:
            self.task.cancel()
        if self.member is not None:
            self.connection.endpoint.hub.detach(self.member)
            self.member = None

    def _release(self) -> None:
        self.finished = True
        self.connection.endpoint.operations -= 1
        if self.kept is not None:
            document, variable_bytes = self.kept
            connection = self.connection
            kept, keeping, size = connection.documents[document]
            connection.subscription_bytes -= variable_bytes
            if keeping > 1:
                connection.documents[document] = (kept, keeping - 1, size)
            else:
                connection.subscription_bytes -= size
                del connection.documents[document]
            self.kept = None
        if self.waiting is not None:
            self.waiting.set()
        if self.connection.operations.get(self.id) is self:
            del self.connection.operations[self.id]

    # Sink (for the hub)

    def put(self, item: str) -> None:
        if self.finished:
            return
        self.pending += 1
        self.connection.enqueue(self, self.prefix + item + "}")

    def backlog(self) -> int:
        return self.pending

    async def drained(self, below: int) -> None:
        while self.pending >= below and not self.finished and not self.connection.gone:
            self.waiting = asyncio.Event()
            self.below = below
            await self.waiting.wait()
        self.waiting = None

    def finish(self, reason: EndReason | None) -> None:
        if self.finished:
            return
        self.member = None
        if reason is None:
            self.complete()
        else:
            self.fail([_error(reason.message, reason.code, **reason.extensions)])

    # Messages

    def next(self, payload: dict[str, Any]) -> None:
        self.pending += 1
        self.connection.enqueue(self, self.prefix + orjson.dumps(payload).decode() + "}")

    def complete(self) -> None:
        if not self.finished:
            self._release()
        self.connection.send({"type": "complete", "id": self.id})

    def fail(self, errors: list[dict[str, Any]]) -> None:
        if not self.finished:
            self._release()
        payload: Any = errors[0] if self.connection.legacy else errors
        self.connection.send({"type": "error", "id": self.id, "payload": payload})

    # Running

    async def _run(self, payload: dict[str, Any]) -> None:
        endpoint = self.connection.endpoint
        request_id = new_id()
        try:
            query = payload.get("query")
            variables = payload.get("variables")
            operation_name = payload.get("operationName")
            if not isinstance(query, str) or not query.strip():
                raise _RequestErrors([GraphQLError("The operation has no 'query' string.")])
            if variables is not None and not isinstance(variables, dict):
                raise _RequestErrors([GraphQLError("'variables' must be a JSON object.")])
            if operation_name is not None and not isinstance(operation_name, str):
                raise _RequestErrors([GraphQLError("'operationName' must be a string.")])
            prepared = endpoint.prepare(query)
            if prepared.document is None or prepared.errors:
                raise _RequestErrors(prepared.errors)
            document = prepared.document
            operation = prepared.operation(operation_name)
            if operation is None:
                problem = prepared.no_operation(operation_name)
                raise _RequestErrors([GraphQLError(problem)])
            assert self.connection.principal is not None
            context = endpoint.make_context(self.connection.principal, request_id)
            if operation.operation is not OperationType.SUBSCRIPTION:
                await self._execute(prepared, variables, operation_name, context)
                return
            too_costly = prepared.cost_errors(operation, variables)
            if too_costly:
                raise _RequestErrors(too_costly)
            declared = {v.variable.name.value for v in operation.variable_definitions or ()}
            variables = {k: v for k, v in (variables or {}).items() if k in declared}
            self._keep(prepared, len(orjson.dumps(variables)))
            await self._subscribe(query, document, operation, variables, operation_name, context)
        except asyncio.CancelledError:
            raise
        except _RequestErrors as exc:
            self.fail([self._coded(e, request_id) for e in exc.errors])
        except Exception as exc:
            if isinstance(exc, DomainError):
                self.fail([_error(exc.message, exc.code)])
                return
            self.fail([self._coded(GraphQLError(str(exc), original_error=exc), request_id)])

    def _coded(self, error: GraphQLError, request_id: str) -> dict[str, Any]:
        return self.connection.endpoint.code_error(error, request_id).formatted

    def _keep(self, prepared: PreparedDocument, variable_bytes: int) -> None:
        """Count what the subscription keeps (its document, once per connection, and its
        declared variables) against the connection's room; LIMIT_EXCEEDED when there is
        none left."""
        connection = self.connection
        document = id(prepared.document)
        _, keeping, _ = connection.documents.get(document, (None, 0, 0))
        size = variable_bytes + (0 if keeping else prepared.size)
        if connection.subscription_bytes + size > MAX_SUBSCRIPTION_BYTES:
            raise _RequestErrors(
                [
                    GraphQLError(
                        f"This connection's subscriptions would keep {size:,} more bytes of "
                        f"documents and variables beside the {connection.subscription_bytes:,}"
                        f" they keep; the limit is {MAX_SUBSCRIPTION_BYTES:,}.",
                        extensions={"code": LimitExceeded.code},
                    )
                ]
            )
        connection.subscription_bytes += size
        connection.documents[document] = (prepared.document, keeping + 1, prepared.size)
        self.kept = (document, variable_bytes)

    async def _execute(
        self,
        prepared: PreparedDocument,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
    ) -> None:
        result = await self.connection.endpoint.execute(
            prepared,
            variables,
            context,
            operation_name,
            {StrawberryOperationType.QUERY, StrawberryOperationType.MUTATION},
        )
        if self.finished:
            return
        errors = [self._coded(e, context.request_id) for e in result.errors or ()]
        if result.data is None and all(e.get("path") is None for e in errors):
            self.fail(errors)
            return
        body: dict[str, Any] = {"data": result.data}
        if errors:
            body["errors"] = errors
        self.next(body)
        self.complete()

    async def _subscribe(
        self,
        query: str,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Any,
    ) -> None:
        endpoint = self.connection.endpoint
        executor = Executor.build(
            endpoint.graphql_schema,
            document,
            context_value=context,
            raw_variable_values=variables,
            operation_name=operation_name,
        )
        if isinstance(executor, list):
            raise _RequestErrors(executor)
        stream = create_source_event_stream(executor)
        if inspect.isawaitable(stream):
            stream = await stream
        if isinstance(stream, ExecutionResult):
            errors = stream.errors or [GraphQLError("The subscription could not start.")]
            self.fail([self._coded(e, context.request_id) for e in errors])
            return
        if not isinstance(stream, SessionFeed | SidebarFeed):
            raise TypeError(f"unexpected subscription source {type(stream).__name__}")
        key = _group_key(query, document, operation, variables, operation_name)
        render = _Renderer(endpoint, document, variables, operation_name, stream.present)
        member = await endpoint.hub.attach(stream, key, render, self)
        if self.finished:
            endpoint.hub.detach(member)
        else:
            self.member = member


class _Renderer:
    """Executes a group's selection for one event and serialises the payload, once for
    every member of the group."""

    def __init__(
        self,
        endpoint: GraphQLWebSocket,
        document: DocumentNode,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        present: Callable[[FeedEvent], Any],
    ) -> None:
        self._endpoint = endpoint
        self._document = document
        self._variables = variables
        self._operation_name = operation_name
        self._present = present
        self._executor: Executor | None = None

    async def __call__(self, event: FeedEvent) -> str:
        executor = self._executor
        if executor is None:
            built = Executor.build(
                self._endpoint.graphql_schema,
                self._document,
                raw_variable_values=self._variables,
                operation_name=self._operation_name,
            )
            if isinstance(built, list):
                raise _RequestErrors(built)
            executor = self._executor = built
        result = execute_subscription_event(executor.build_per_event_executor(self._present(event)))
        if inspect.isawaitable(result):
            result = await result
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [
                self._endpoint.code_error(e, "live-event").formatted for e in result.errors
            ]
        return orjson.dumps(payload).decode()


def _group_key(
    query: str,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> tuple[Any, ...]:
    """Subscribers with equal keys get equal payloads. `afterSeq` only decides where a
    subscriber's replay starts, so its variable is left out when nothing else reads it."""
    values = dict(variables or {})
    replay_variable = _after_seq_variable(operation)
    if replay_variable is not None and _variable_uses(document).get(replay_variable) == 1:
        values.pop(replay_variable, None)
    return (
        query,
        operation_name,
        orjson.dumps(values, option=orjson.OPT_SORT_KEYS),
    )


def _after_seq_variable(operation: OperationDefinitionNode) -> str | None:
    for selection in operation.selection_set.selections:
        for argument in getattr(selection, "arguments", None) or ():
            if argument.name.value == "afterSeq" and isinstance(argument.value, VariableNode):
                return argument.value.name.value
    return None


def _variable_uses(document: DocumentNode) -> dict[str, int]:
    counts: dict[str, int] = {}

    class Count(Visitor):
        def enter_variable_definition(self, *_: Any) -> Any:
            return Visitor.SKIP

        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            counts[node.name.value] = counts.get(node.name.value, 0) + 1

    visit(document, Count())
    return counts


def _expiry(authorization: str | None) -> float | None:
    """The `exp` of a token the verifier has just accepted."""
    token = (authorization or "").strip().partition(" ")[2].strip()
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.InvalidTokenError:
        return None
    return float(exp) if isinstance(exp, int | float) else None


def _authorization(payload: dict[str, Any] | None, websocket: WebSocket) -> str | None:
    if payload:
        for key in ("Authorization", "authorization"):
            if isinstance(payload.get(key), str):
                return payload[key]
        token = payload.get("token")
        if isinstance(token, str):
            return f"Bearer {token}"
        headers = payload.get("headers")
        if isinstance(headers, dict):
            for key in ("Authorization", "authorization"):
                if isinstance(headers.get(key), str):
                    return headers[key]
    return websocket.headers.get("authorization")


def _run_eagerly(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[None] | None:
    """Run `coroutine` until it first suspends: None when it finished there (its
    exception, if any, propagates); else a task that drives it to its end. (What
    Python 3.12's eager tasks do, without creating a task in the common case.)"""
    try:
        suspended = coroutine.send(None)
    except StopIteration:
        return None
    return asyncio.get_running_loop().create_task(_resume(coroutine, suspended))


async def _resume(coroutine: Coroutine[Any, Any, Any], suspended: Any) -> None:
    """Drive a coroutine that suspended on `suspended` as a task would: wait for the
    future it yielded, then resume it, until it returns."""
    try:
        while True:
            try:
                if suspended is None:
                    await asyncio.sleep(0)
                else:
                    # Task.__step clears this flag before waiting on a yielded future.
                    suspended._asyncio_future_blocking = False
                    await suspended
            except BaseException as exc:
                suspended = coroutine.throw(exc)
                continue
            suspended = coroutine.send(None)
    except StopIteration:
        return
    finally:
        coroutine.close()
