"""GraphQL over WebSocket at /graphql: `graphql-transport-ws` and the legacy `graphql-ws`
(subscriptions-transport-ws), chosen by subprotocol; one of the transports of the execution
seam (execution.Seam), which runs every operation sent over it (websocket_operations).

Written here rather than taken from Strawberry so that a subscription's selection runs
once per event for every subscriber that sent the same document and variables (see
realtime.hub): executing it per subscriber costs a quarter of a millisecond each, which a
thousand followers of one session turn into a quarter of a second per turn.

The connection:
- authenticates with the token in `connection_init` (`{"Authorization": "Bearer …"}` or
  `{"token": "…"}`; the upgrade request's Authorization header also works). A missing,
  bad or expired token closes with 4401 (graphql-ws: `connection_error` first);
- must send `connection_init` within the init timeout (else 4408);
- answers `ping` with `pong` (graphql-ws: the server sends `ka` periodically);
- runs subscriptions (shared), and also queries and mutations (one `next`, then
  `complete`), through the same @auth and policy checks as over HTTP.

Writing: a connection queues its messages; the endpoint's writers (`_Writers`) write them.
A live event reaches a thousand sockets of one instance at once, and a task per socket
would be a thousand task wake-ups per event; instead one writer task takes every
connection with something to write and awaits each socket's send in turn. A send that
does not have to wait for the client (the usual case) completes within that await, so a
thousand sockets cost one task step. A send that waits (a client reading slowly) holds
only its writer: another starts for the connections still waiting. Every subscription
counts what it has queued, and the hub ends one that falls too far behind (LIMIT_EXCEEDED
with the seq to resume from) instead of letting memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import jwt
import orjson
import structlog
from graphql import GraphQLError
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..domain.errors import LimitExceeded, Unauthenticated
from ..domain.models import Principal
from ..realtime.hub import Hub
from .execution import Seam
from .websocket_operations import SocketOperation, error

log = structlog.get_logger("sessionhub.websocket")

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
SUBPROTOCOLS = (TRANSPORT_WS, LEGACY_WS)

MAX_OPERATIONS = 100
# How long closing waits for a send the client is slow to take.
CLOSE_WAIT_SECONDS = 1.0


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class GraphQLWebSocket:
    """The WebSocket side of /graphql (a Starlette WebSocketRoute endpoint)."""

    def __init__(
        self,
        seam: Seam,
        hub: Hub,
        authenticate: Callable[[str | None], Principal],
        make_context: Callable[[Principal, str], Any],
        code_error: Callable[[GraphQLError, str], GraphQLError],
        *,
        init_timeout: float = 10.0,
        keepalive: float = 15.0,
        max_connections_per_principal: int = 32,
    ) -> None:
        self.seam = seam
        self.hub = hub
        self.authenticate = authenticate
        self.make_context = make_context
        self.code_error = code_error
        self.init_timeout = init_timeout
        self.keepalive = keepalive
        self.max_connections_per_principal = max_connections_per_principal
        # Open connections of each principal (entity, user): what one token may hold.
        self.by_principal: dict[tuple[str, str], int] = {}
        self.connections = 0
        self.operations = 0
        self.tasks = 0
        self.queued = 0
        self.writers = _Writers(self)
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


class _Writers:
    """The tasks that write the endpoint's queued messages to their sockets.

    `ready` holds the connections with a message to write and none being written; a
    writer takes one, writes its oldest message, and queues it again if it has more
    (round robin, so that one long replay does not hold back everyone's live event). A
    writer ends when nothing is ready. `free` counts the writers not waiting for a client
    to take a message; when there is none and a connection is ready, another writer
    starts: on queuing, and when a writer stops to wait (a writer keeps a check armed for
    the next turn of the event loop, which comes only once it waits or ends)."""

    def __init__(self, endpoint: GraphQLWebSocket) -> None:
        self._endpoint = endpoint
        self._ready: deque[_Connection] = deque()
        self._free = 0
        self._armed = False
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, connection: _Connection) -> None:
        self._ready.append(connection)
        if self._free == 0:
            self._start()

    def _start(self) -> None:
        self._free += 1
        self._endpoint.tasks += 1
        task = asyncio.get_running_loop().create_task(self._write(), name="graphql-ws:write")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check(self) -> None:
        """The event loop's next turn: every writer is waiting for a slow client, or done."""
        self._armed = False
        if self._ready and self._free == 0:
            self._start()

    async def _write(self) -> None:
        ready = self._ready
        loop = asyncio.get_running_loop()
        try:
            while ready:
                if not self._armed:
                    self._armed = True
                    loop.call_soon(self._check)
                connection = ready.popleft()
                connection.scheduled = False
                if connection.gone or connection.closing or not connection.outbox:
                    continue
                operation, frame = connection.outbox.popleft()
                self._endpoint.queued -= 1
                connection.writing = True
                self._free -= 1
                try:
                    await connection.ws.send({"type": "websocket.send", "text": frame})
                except (WebSocketDisconnect, RuntimeError, OSError):
                    # The receive side sees the disconnect and tears the connection down.
                    connection.gone = True
                    continue
                finally:
                    self._free += 1
                    connection.writing = False
                    if connection.written is not None:
                        connection.written.set()
                if operation is not None:
                    operation.sent()
                if connection.outbox and not (connection.gone or connection.closing):
                    connection.scheduled = True
                    ready.append(connection)
        finally:
            self._free -= 1
            self._endpoint.tasks -= 1


class _Connection:
    def __init__(self, endpoint: GraphQLWebSocket, websocket: WebSocket, protocol: str) -> None:
        self.endpoint = endpoint
        self.ws = websocket
        self.legacy = protocol == LEGACY_WS
        self.principal: Principal | None = None
        self.init_received = False
        self.operations: dict[str, SocketOperation] = {}
        # Messages not written yet, with the operation each is for (its backlog).
        self.outbox: deque[tuple[SocketOperation | None, str]] = deque()
        self.scheduled = False  # waiting in the writers' queue
        self.writing = False  # a writer is sending one of its messages
        self.written: asyncio.Event | None = None  # set when that send ends (closing waits)
        self.keepalive: asyncio.TimerHandle | None = None
        self.expiry: asyncio.TimerHandle | None = None
        self.expiring: asyncio.Task[None] | None = None
        self.closing = False
        self.gone = False
        self.subscription_bytes = 0
        # Documents the connection's subscriptions keep, counted once each: id -> (the
        # document, kept alive so that its id is not reused; subscriptions; its size).
        self.documents: dict[int, tuple[Any, int, int]] = {}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
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

    async def _flush_and_close(self, code: int, reason: str) -> None:
        """Write what is queued (after the send under way, if any), then close."""
        self.closing = True  # the writers leave it alone from now on
        if self.writing:
            self.written = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.written.wait(), CLOSE_WAIT_SECONDS)
        self.gone = True
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
            self.expiring = asyncio.get_running_loop().create_task(
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
        operation = SocketOperation(self, op_id)
        payload = message.get("payload")
        if len(self.operations) >= MAX_OPERATIONS:
            operation.fail(
                [error(f"At most {MAX_OPERATIONS} operations per connection.", LimitExceeded.code)]
            )
            return
        self.operations[op_id] = operation
        operation.start(payload if isinstance(payload, dict) else {})

    # Writing

    def send(self, message: dict[str, Any]) -> None:
        self.enqueue(None, orjson.dumps(message).decode())

    def enqueue(self, operation: SocketOperation | None, frame: str) -> None:
        if self.gone or self.closing:
            return
        self.outbox.append((operation, frame))
        self.endpoint.queued += 1
        if not (self.scheduled or self.writing):
            self.scheduled = True
            self.endpoint.writers.schedule(self)


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
