"""The per-principal rate limit (server/rate_limits.py) against what it meets: a Redis that
accepts connections and never answers, rates of several items, and the in-process storage
of `limits`, whose expiry task the limit waits for on close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from sessionhub.domain.errors import RateLimited
from sessionhub.domain.models import Principal, Role, UserType
from sessionhub.server.rate_limits import PrincipalRateLimit, memory_expiry_task, parse_rate
from tests.support.redis_server import RedisServer

DAVE = Principal("dave", "acme", UserType.INTERNAL, frozenset({Role.USER}))
# What "at all" means for an attempt against a Redis that never answers: far above the
# limit's own timeout, far below forever.
HANG_S = 15.0


class Blackhole:
    """A TCP listener on 127.0.0.1 that accepts connections, reads what comes, and never
    answers: a Redis behind a dropped route or a frozen host."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._held: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._held.append(writer)
        while await reader.read(4096):
            pass

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Blackhole]:
        self._server = await asyncio.start_server(self._swallow, "127.0.0.1", 0)
        try:
            yield self
        finally:
            for writer in self._held:
                writer.close()
            self._server.close()
            await self._server.wait_closed()


async def test_a_redis_that_never_answers_falls_back_to_counting_here() -> None:
    async with Blackhole().running() as hole:
        limit = PrincipalRateLimit("2/minute", "share links opened", "link-open", hole.url)
        try:
            await asyncio.wait_for(limit.count(DAVE), HANG_S)
            await asyncio.wait_for(limit.count(DAVE), HANG_S)
            with pytest.raises(RateLimited) as refused:
                await asyncio.wait_for(limit.count(DAVE), HANG_S)
            assert refused.value.message.startswith("Too many share links opened (2 per minute)")
            # Once Redis failed to answer, the next attempts count here without trying it
            # again at once: one connection was tried, not one an attempt.
            assert hole.connections == 1
        finally:
            await asyncio.wait_for(limit.close(), HANG_S)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "redis"])
async def test_an_attempt_refused_by_one_item_counts_for_none(
    shared: bool, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_server").url if shared else None
    limit = PrincipalRateLimit("2/minute;1/second", "share links opened", "link-open", redis_url)
    try:
        await limit.count(DAVE)
        waits = []
        for _ in range(2):
            with pytest.raises(RateLimited) as refused:
                await limit.count(DAVE)
            assert "(1 per second)" in refused.value.message
            waits.append(refused.value.retry_after)
        # The wait announced holds: the two refused attempts used none of the minute's two.
        await asyncio.sleep(max(waits) + 0.05)
        await limit.count(DAVE)
        # And the attempts let through are counted by every item.
        await asyncio.sleep(1.05)
        with pytest.raises(RateLimited) as refused:
            await limit.count(DAVE)
        assert "(2 per minute)" in refused.value.message
    finally:
        await limit.close()


async def test_the_in_process_storage_keeps_its_expiry_task_where_the_limit_looks() -> None:
    """`limits` does not document where its in-process storage keeps the task that drops
    expired counts; the limit waits for it on close (an unfinished task at the end of the
    loop is an error). Should an upgrade move it, this fails rather than close() silently
    leaving the task behind."""
    storage = MemoryStorage()
    assert memory_expiry_task(storage) is None
    await MovingWindowRateLimiter(storage).hit(parse_rate("1/second")[0], "probe")
    task = memory_expiry_task(storage)
    assert isinstance(task, asyncio.Task)
    await task

    limit = PrincipalRateLimit("5/minute", "share links opened", "link-open")
    await limit.count(DAVE)
    await limit.close()
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert pending == []
