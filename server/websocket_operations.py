"""One operation of a GraphQL WebSocket connection (server.websocket): a query or mutation
run once through the execution seam, or a subscription started by the seam and attached to
the realtime hub, whose events the seam renders once per group.

Subscribers with the same document and variables (afterSeq aside) form a group: the hub
executes the group's selection once per event and hands every member the same payload,
serialised once here; each member's message only differs by its id, spliced into the
shared text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, VariableNode
from graphql.language import Visitor, visit

from ..domain.clock import new_id
from ..domain.errors import DomainError, LimitExceeded
from ..realtime.feeds import EndReason, FeedEvent, Member, SessionFeed, SidebarFeed
from .execution import EventRenderer, Operation, Result
from .execution.documents import Prepared, no_operation
from .execution.seam import CannotGetOperationTypeError

if TYPE_CHECKING:
    from .websocket import GraphQLWebSocket, _Connection

# What a connection's live subscriptions may keep: their prepared documents (each counted
# once, at the document cache's estimate of what a parsed document holds) and their
# variables. The rest of a message is gone once it is read; these stay for the
# subscription's life.
MAX_SUBSCRIPTION_BYTES = 4 * 1024 * 1024


def error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return dict(GraphQLError(message, extensions={"code": code, **extensions}).formatted)


class _RequestErrors(Exception):
    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message if errors else "invalid request")
        self.errors = errors


class SocketOperation:
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

    def sent(self) -> None:
        """The connection wrote one of this operation's messages."""
        self.pending -= 1
        if self.waiting is not None and self.pending < self.below:
            self.waiting.set()

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
            self.fail([error(reason.message, reason.code, **reason.extensions)])

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
            seam = endpoint.seam
            try:
                checked = seam.check(seam.prepare(query), variables, operation_name)
            except CannotGetOperationTypeError:
                # As over HTTP (graphql_http): the document has no such operation.
                problem = no_operation(operation_name, 0)
                raise _RequestErrors([GraphQLError(problem)]) from None
            if isinstance(checked, Result):
                raise _RequestErrors(checked.errors or [])
            assert self.connection.principal is not None
            context = endpoint.make_context(self.connection.principal, request_id)
            if not checked.is_subscription:
                await self._execute(checked, context)
                return
            variables = checked.declared_variables()
            self._keep(checked.prepared, len(orjson.dumps(variables)))
            await self._subscribe(query, checked, variables, context)
        except asyncio.CancelledError:
            raise
        except _RequestErrors as exc:
            self.fail([self._coded(e, request_id) for e in exc.errors])
        except Exception as exc:
            if isinstance(exc, DomainError):
                self.fail([error(exc.message, exc.code)])
                return
            self.fail([self._coded(GraphQLError(str(exc), original_error=exc), request_id)])

    def _coded(self, error: GraphQLError, request_id: str) -> dict[str, Any]:
        return dict(self.connection.endpoint.code_error(error, request_id).formatted)

    def _keep(self, prepared: Prepared, variable_bytes: int) -> None:
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

    async def _execute(self, operation: Operation, context: Any) -> None:
        result = await self.connection.endpoint.seam.run(operation, context)
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
        self, query: str, operation: Operation, variables: dict[str, Any], context: Any
    ) -> None:
        endpoint = self.connection.endpoint
        started = await endpoint.seam.subscribe(operation, context)
        if isinstance(started, Result):
            errors = started.errors or [GraphQLError("The subscription could not start.")]
            self.fail([self._coded(e, context.request_id) for e in errors])
            return
        feed = started.source
        if not isinstance(feed, SessionFeed | SidebarFeed):
            raise TypeError(f"unexpected subscription source {type(feed).__name__}")
        document = operation.prepared.document
        assert document is not None
        key = _group_key(query, document, operation.node, variables, operation.name)
        render = _Renderer(endpoint, started.render, feed.present)
        member = await endpoint.hub.attach(feed, key, render, self)
        if self.finished:
            endpoint.hub.detach(member)
        else:
            self.member = member


class _Renderer:
    """A group's rendering of one event: the seam executes the selection, once for every
    member of the group, and the payload is serialised here, once too."""

    def __init__(
        self,
        endpoint: GraphQLWebSocket,
        render: EventRenderer,
        present: Callable[[FeedEvent], Any],
    ) -> None:
        self._endpoint = endpoint
        self._render = render
        self._present = present

    async def __call__(self, event: FeedEvent) -> str:
        result = await self._render(self._present(event))
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
