"""How often one principal may try something: the `limits` library's moving window per
principal, kept in process, or in Redis when instances share one (SESSIONHUB_REDIS_URL).

A moving window of N per period lets a burst of N through at once and then one more each
time the oldest counted attempt leaves the window. Refused attempts are not counted (with
several items, one that refuses keeps the others from counting the attempt), so the wait
announced (`retryAfter`) holds whatever the caller does meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from typing import NoReturn

import orjson
import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..domain.errors import RateLimited
from ..domain.models import Principal

log = structlog.get_logger("sessionhub.rate_limits")

# Redis URL schemes as `limits` names them for its asyncio storage.
_REDIS_SCHEMES = {"redis://": "async+redis://", "rediss://": "async+rediss://"}
# A count is one round trip on the request's path: a Redis that has not answered within
# this long is taken for gone, and the attempt is counted here instead.
REDIS_TIMEOUT_S = 1.0
# After Redis failed to answer, attempts are counted here for this long before Redis is
# tried again, so that an outage costs one timeout per pause rather than one per attempt.
REDIS_PAUSE_S = 5.0


def parse_rate(rate: str) -> list[RateLimitItem]:
    """`10/minute`, `10 per minute`, several joined by `;` (all must allow an attempt)."""
    return parse_many(rate)


def _redis_storage(redis_url: str, prefix: str) -> tuple[RedisStorage, ConnectionPool]:
    pool = ConnectionPool.from_url(
        redis_url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )
    scheme, sep, rest = redis_url.partition("://")
    uri = _REDIS_SCHEMES.get(scheme + sep, "async+redis+unix://") + rest
    storage = RedisStorage(
        uri,
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=prefix,
        # limits passes its options on to redis-py; its stub types them as scalars.
        connection_pool=pool,  # type: ignore[arg-type]
    )
    return storage, pool


class PrincipalRateLimit:
    """At most `rate` attempts per principal (entity and user id together); the counts of
    every instance together when `redis_url` is set. While Redis does not answer, each
    instance counts on its own rather than letting every attempt through or refusing all
    (and tries Redis again after REDIS_PAUSE_S)."""

    def __init__(self, rate: str, what: str, name: str, redis_url: str | None = None) -> None:
        self._items = parse_rate(rate)
        self._what = what
        self._name = name
        self._memory = MemoryStorage()
        self._pool: ConnectionPool | None = None
        storage: Storage = self._memory
        if redis_url is not None:
            storage, self._pool = _redis_storage(redis_url, f"sessionhub:rate:{name}")
        self._shared = MovingWindowRateLimiter(storage)
        self._local = MovingWindowRateLimiter(self._memory)
        self._redis_paused_until = 0.0

    async def count(self, principal: Principal) -> None:
        """One more attempt by `principal`; RateLimited when the rate is used up."""
        key = hashlib.sha256(orjson.dumps([principal.entity_id, principal.user_id])).hexdigest()
        if self._pool is None or time.monotonic() < self._redis_paused_until:
            await self._check(self._local, key)
            return
        try:
            await self._check(self._shared, key)
        except StorageError as exc:
            self._redis_paused_until = time.monotonic() + REDIS_PAUSE_S
            log.warning("rate_limit.redis_unavailable", limit=self._name, error=str(exc))
            await self._check(self._local, key)

    async def _check(self, limiter: MovingWindowRateLimiter, key: str) -> None:
        # Every item is asked before any counts the attempt: a refused attempt uses none.
        for item in self._items:
            if not await limiter.test(item, self._name, key):
                await self._refuse(limiter, item, key)
        for item in self._items:
            # Only an attempt racing this one between the test and the hit ends here.
            if not await limiter.hit(item, self._name, key):
                await self._refuse(limiter, item, key)

    async def _refuse(
        self, limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str
    ) -> NoReturn:
        reset_at, _ = await limiter.get_window_stats(item, self._name, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(
            f"Too many {self._what} ({item.amount} per {_period(item)}); "
            f"try again in {retry_after} s.",
            retry_after,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        # The in-process storage schedules a task that drops expired counts; let it end
        # in the loop that made it.
        expiry = memory_expiry_task(self._memory)
        if expiry is not None and not expiry.done():
            await expiry


def memory_expiry_task(storage: MemoryStorage) -> asyncio.Task[None] | None:
    """The task `limits`' in-process storage last scheduled to drop expired counts, if
    any. The library keeps it as `timer`, which it does not document (limits 5.8);
    tests/server/test_rate_limits.py fails if an upgrade moves it."""
    return getattr(storage, "timer", None)


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
