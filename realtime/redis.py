"""The Redis pub/sub broker, for several instances on one store.

One connection per instance carries every channel its subscribers follow (the hub fans
out in process); a second one publishes. Both reconnect by themselves with a capped
backoff, and neither ever makes a mutation fail or wait:

- `publish` delivers to this instance's own followers at once and queues the
  notification for Redis; a background task sends the queue in pipelined batches. While
  Redis is away the queue is kept (bounded: the oldest are dropped, and counted) and sent
  when it is back.
- The subscribing connection resubscribes every channel after a reconnect, and tells the
  hub which channels may have missed notifications (`resumed`), so that each group
  catches up from the store: nothing is lost, as notifications only say *that* something
  changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import OrderedDict, deque
from typing import Any

import structlog
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..domain.events import SessionEvent
from .notifications import Notification, Router
from .protocol import Receiver

log = structlog.get_logger("sessionhub.realtime")

PUBLISH_BATCH = 256
LOCAL_IDS = 10_000
"""Ids of notifications this instance delivered to itself, not to deliver again when
Redis hands them back."""


class RedisBroker:
    def __init__(
        self,
        url: str,
        router: Router,
        *,
        backoff_min: float = 0.05,
        backoff_max: float = 1.0,
        ping_interval: float = 5.0,
        connect_timeout: float = 2.0,
        max_backlog: int = 10_000,
    ) -> None:
        self._pool = ConnectionPool.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=max(ping_interval, 1.0),
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            # RESP2: subscription replies and messages are plain replies to read, not pushes
            # that RESP3 hands to a callback.
            protocol=2,
        )
        self._router = router
        self._backoff = (backoff_min, backoff_max)
        self._ping_interval = ping_interval
        self._max_backlog = max_backlog
        self._receiver: Receiver | None = None
        self._wanted: set[str] = set()
        self._confirmed: set[str] = set()
        self._missed: set[str] = set()
        """Channels wanted while the subscribing connection was down."""
        self._sub: AbstractConnection | None = None
        self._commands: deque[tuple[str, ...]] = deque()
        self._command_task: asyncio.Task[None] | None = None
        self._outgoing: deque[tuple[str, bytes]] = deque()
        self._outgoing_ready = asyncio.Event()
        self._local_ids: OrderedDict[str, None] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._was_down = False
        # Numbers for /metrics
        self._sub_connected = False
        self._pub_connected = False
        self._reconnects = 0
        self._published = 0
        self._publish_failures = 0
        self._dropped = 0
        self._received = 0
        self._local_deliveries = 0

    # Wiring

    def attach(self, receiver: Receiver) -> None:
        self._receiver = receiver

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._subscriber(), name="redis-broker:subscribe"),
            loop.create_task(self._publisher(), name="redis-broker:publish"),
        ]

    async def close(self) -> None:
        self._closed = True
        tasks = [*self._tasks, *([self._command_task] if self._command_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._pool.disconnect()

    # Channels

    def subscribe(self, channel: str) -> None:
        if channel in self._wanted:
            return
        self._wanted.add(channel)
        if self._sub is None:
            self._missed.add(channel)
        else:
            self._command("SUBSCRIBE", channel)

    def unsubscribe(self, channel: str) -> None:
        if channel not in self._wanted:
            return
        self._wanted.discard(channel)
        self._missed.discard(channel)
        if self._sub is not None:
            self._command("UNSUBSCRIBE", channel)

    def _command(self, *args: str) -> None:
        self._commands.append(args)
        if self._command_task is None:
            self._command_task = asyncio.get_running_loop().create_task(
                self._send_commands(), name="redis-broker:commands"
            )

    async def _send_commands(self) -> None:
        """SUBSCRIBE / UNSUBSCRIBE on the subscribing connection, in order. A failure is
        left to the subscriber loop: it reconnects and subscribes what is wanted then."""
        try:
            while self._commands:
                conn = self._sub
                if conn is None:
                    self._commands.clear()
                    return
                batch = list(self._commands)
                self._commands.clear()
                try:
                    await conn.send_packed_command(conn.pack_commands(batch), check_health=False)
                except (RedisError, OSError) as exc:
                    log.warning("redis.command_failed", error=str(exc))
                    self._commands.clear()
                    return
        finally:
            self._command_task = None

    # Publishing

    async def publish(self, event: SessionEvent) -> None:
        try:
            routed = await self._router.route(event)
        except Exception:
            self._publish_failures += 1
            log.exception("redis.route_failed", event=type(event).__name__)
            return
        if not routed:
            return
        receiver = self._receiver
        note_id = routed[0][1].id
        if receiver is not None and any(channel in self._wanted for channel, _ in routed):
            self._local_ids[note_id] = None
            if len(self._local_ids) > LOCAL_IDS:
                self._local_ids.popitem(last=False)
            for channel, note in routed:
                if channel in self._wanted:
                    self._local_deliveries += 1
                    try:
                        receiver.deliver(channel, note)
                    except Exception:
                        log.exception("redis.local_delivery_failed", channel=channel)
        for channel, note in routed:
            self._outgoing.append((channel, note.to_json()))
        while len(self._outgoing) > self._max_backlog:
            self._outgoing.popleft()
            self._dropped += 1
        self._outgoing_ready.set()

    async def _publisher(self) -> None:
        conn: AbstractConnection | None = None
        attempt = 0
        while not self._closed:
            if not self._outgoing:
                self._outgoing_ready.clear()
                await self._outgoing_ready.wait()
                continue
            try:
                if conn is None:
                    conn = self._pool.make_connection()
                    await conn.connect()
                    self._pub_connected = True
                    attempt = 0
                batch = [self._outgoing[i] for i in range(min(PUBLISH_BATCH, len(self._outgoing)))]
                await conn.send_packed_command(
                    conn.pack_commands([("PUBLISH", channel, data) for channel, data in batch]),
                    check_health=False,
                )
                for _ in batch:
                    await conn.read_response()
                for _ in batch:
                    self._outgoing.popleft()
                self._published += len(batch)
            except (RedisError, OSError) as exc:
                self._publish_failures += 1
                if attempt == 0:
                    log.warning("redis.publish_failed", error=str(exc), backlog=len(self._outgoing))
                self._pub_connected = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.disconnect(nowait=True)
                conn = None
                await asyncio.sleep(self._delay(attempt))
                attempt += 1
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    # Subscribing

    async def _subscriber(self) -> None:
        attempt = 0
        while not self._closed:
            conn = self._pool.make_connection()
            try:
                await conn.connect()
                self._sub = conn
                self._sub_connected = True
                self._confirmed.clear()
                if self._was_down:
                    self._reconnects += 1
                    log.info("redis.reconnected", channels=len(self._wanted))
                attempt = 0
                if self._wanted:
                    await conn.send_command("SUBSCRIBE", *sorted(self._wanted), check_health=False)
                await self._read(conn)
            except (RedisError, OSError) as exc:
                if not self._was_down:
                    log.warning("redis.subscriber_lost", error=str(exc))
            finally:
                self._sub = None
                self._sub_connected = False
                self._confirmed.clear()
                self._missed |= self._wanted
                self._commands.clear()
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
            if self._closed:
                return
            self._was_down = True
            await asyncio.sleep(self._delay(attempt))
            attempt += 1

    async def _read(self, conn: AbstractConnection) -> None:
        awaiting_pong = False
        while True:
            response = await conn.read_response(
                timeout=self._ping_interval, disconnect_on_error=False
            )
            if response is None:
                if awaiting_pong:
                    raise TimeoutError("Redis did not answer a PING")
                await conn.send_command("PING", check_health=False)
                awaiting_pong = True
                continue
            awaiting_pong = False
            if isinstance(response, list) and len(response) >= 2:
                self._handle(response)

    def _handle(self, response: list[Any]) -> None:
        kind = response[0]
        if isinstance(kind, bytes):
            kind = kind.decode()
        channel = response[1].decode() if isinstance(response[1], bytes) else str(response[1])
        receiver = self._receiver
        if kind == "message" and len(response) >= 3:
            if channel not in self._wanted or receiver is None:
                return
            try:
                note = Notification.from_json(response[2])
            except ValueError:
                log.warning("redis.bad_message", channel=channel)
                return
            if note.id in self._local_ids:
                del self._local_ids[note.id]
                return
            self._received += 1
            receiver.deliver(channel, note)
        elif kind == "subscribe":
            if channel in self._wanted:
                self._confirmed.add(channel)
                resumed = channel in self._missed
                self._missed.discard(channel)
                if receiver is not None:
                    receiver.subscribed(channel, resumed)
        elif kind == "unsubscribe":
            self._confirmed.discard(channel)

    def _delay(self, attempt: int) -> float:
        low, high = self._backoff
        return min(high, low * math.pow(2, attempt))

    def problem(self) -> str | None:
        if self._sub_connected:
            return None
        return "Redis does not answer (reconnecting): live updates from other instances wait for it"

    def stats(self) -> dict[str, int | float]:
        return {
            "broker_channels": len(self._wanted),
            "redis_channels_subscribed": len(self._confirmed),
            "redis_connected": int(self._sub_connected),
            "redis_publisher_connected": int(self._pub_connected),
            "redis_reconnects": self._reconnects,
            "redis_published": self._published,
            "redis_publish_failures": self._publish_failures,
            "redis_publish_backlog": len(self._outgoing),
            "redis_dropped": self._dropped,
            "redis_received": self._received,
            "broker_local_deliveries": self._local_deliveries,
        }
