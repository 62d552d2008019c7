"""How often one principal may try something: the `limits` library's moving window per
principal, kept in process, or in Redis when instances share one (SESSIONHUB_REDIS_URL).

A moving window of N per period lets a burst of N through at once and then one more each
time the oldest counted attempt leaves the window. Refused attempts are not counted, so
the wait announced (`retryAfter`) holds whatever the caller does meanwhile.
"""

from __future__ import annotations

import hashlib
import math
import time

import orjson
import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from ..domain.errors import RateLimited
from ..domain.models import Principal

log = structlog.get_logger("sessionhub.rate_limits")

# Redis URL schemes as `limits` names them for its asyncio storage.
_REDIS_SCHEMES = {"redis://": "async+redis://", "rediss://": "async+rediss://"}


def parse_rate(rate: str) -> list[RateLimitItem]:
    """`10/minute`, `10 per minute`, several joined by `;` (all must allow an attempt)."""
    return parse_many(rate)


def _redis_storage(redis_url: str, prefix: str) -> tuple[RedisStorage, ConnectionPool]:
    pool = ConnectionPool.from_url(redis_url)
    scheme, sep, rest = redis_url.partition("://")
    uri = _REDIS_SCHEMES.get(scheme + sep, "async+redis+unix://") + rest
    storage = RedisStorage(
        uri,
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=prefix,
        connection_pool=pool,
    )
    return storage, pool


class PrincipalRateLimit:
    """At most `rate` attempts per principal (entity and user id together); the counts of
    every instance together when `redis_url` is set. While Redis does not answer, each
    instance counts on its own rather than letting every attempt through or refusing all."""

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

    async def count(self, principal: Principal) -> None:
        """One more attempt by `principal`; RateLimited when the rate is used up."""
        key = hashlib.sha256(orjson.dumps([principal.entity_id, principal.user_id])).hexdigest()
        try:
            await self._check(self._shared, key)
        except StorageError as exc:
            log.warning("rate_limit.redis_unavailable", limit=self._name, error=str(exc))
            await self._check(self._local, key)

    async def _check(self, limiter: MovingWindowRateLimiter, key: str) -> None:
        for item in self._items:
            if not await limiter.hit(item, self._name, key):
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
        timer = self._memory.timer
        if timer is not None and not timer.done():
            await timer


def _period(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
