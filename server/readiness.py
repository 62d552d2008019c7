"""Readiness (`GET /readyz`): whether this instance can do its work now — its store reads
and writes, its broker carries events — as opposed to liveness (`GET /healthz`), which
only says that the process answers.

A store that is full, damaged or read-only leaves the process alive and answering; a
restart would not cure it (and could not even start on a damaged file), so liveness stays
green while readiness turns red and names the problem.

The checks run at most once per `interval`: a request in between gets the last answer.
The endpoint has no authentication, and the store's check is a real write: a flood of
probes must not become a flood of writes queued in front of the users' own.
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..domain.errors import DomainError
from ..realtime.protocol import ChannelBroker
from ..storage.protocol import Store

INTERVAL_SECONDS = 1.0
OK = "ok"


class Readiness:
    def __init__(self, store: Store, broker: ChannelBroker, interval: float = INTERVAL_SECONDS):
        self._store = store
        self._broker = broker
        self._interval = interval
        self._lock = asyncio.Lock()
        self._answer: tuple[int, dict[str, str]] | None = None
        self._answered_at = 0.0

    async def endpoint(self, request: Request) -> Response:
        status, body = await self.answer()
        return JSONResponse(body, status_code=status)

    async def answer(self) -> tuple[int, dict[str, str]]:
        """(HTTP status, body): 200 with every check "ok", else 503 with each failing
        check's problem in words."""
        async with self._lock:
            fresh = time.monotonic() - self._answered_at < self._interval
            if self._answer is None or not fresh:
                self._answer = await self._check()
                self._answered_at = time.monotonic()
            return self._answer

    async def _check(self) -> tuple[int, dict[str, str]]:
        checks = {"store": OK, "broker": self._broker.problem() or OK}
        try:
            await self._store.check_ready()
        except DomainError as exc:
            checks["store"] = exc.message
        if all(value == OK for value in checks.values()):
            return 200, {"status": OK, **checks}
        return 503, {"status": "unavailable", **checks}
