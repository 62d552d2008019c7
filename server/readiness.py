"""Readiness (`GET /readyz`): whether this instance can do its work now — its store reads
and writes, its broker carries events — as opposed to liveness (`GET /healthz`), which
only says that the process answers.

A store that is full, damaged or read-only leaves the process alive and answering; a
restart would not cure it (and could not even start on a damaged file), so liveness stays
green while readiness turns red and names the problem.

The checks run at most once per `interval`: a request in between gets the last answer.
The endpoint has no authentication, and the store's check is a real write: a flood of
probes must not become a flood of writes queued in front of the users' own.

A store that does not answer within `answer_within` (its write waits behind a long
erasure or retention batch, or another process's transaction) is reported busy rather
than holding the probe, and every probe behind it, for as long: the check goes on in the
background, and no second one starts until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..domain.errors import DomainError
from ..domain.ports import Store
from ..realtime.protocol import ChannelBroker

log = structlog.get_logger("sessionhub.readiness")

INTERVAL_SECONDS = 1.0
ANSWER_WITHIN_SECONDS = 2.0
OK = "ok"


class Readiness:
    def __init__(
        self,
        store: Store,
        broker: ChannelBroker,
        interval: float = INTERVAL_SECONDS,
        answer_within: float = ANSWER_WITHIN_SECONDS,
    ):
        self._store = store
        self._broker = broker
        self._interval = interval
        self._answer_within = answer_within
        self._lock = asyncio.Lock()
        self._answer: tuple[int, dict[str, str]] | None = None
        self._answered_at = 0.0
        self._store_check: asyncio.Task[str] | None = None

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

    async def close(self) -> None:
        """Ends a store check still waiting (at shutdown, before the store closes)."""
        if self._store_check is not None:
            self._store_check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._store_check

    async def _check(self) -> tuple[int, dict[str, str]]:
        checks = {"store": await self._store_state(), "broker": self._broker.problem() or OK}
        if all(value == OK for value in checks.values()):
            return 200, {"status": OK, **checks}
        return 503, {"status": "unavailable", **checks}

    async def _store_state(self) -> str:
        if self._store_check is None or self._store_check.done():
            self._store_check = asyncio.create_task(self._check_store())
        try:
            # Shielded: a check that outlasts this probe goes on, and the next probe waits
            # for it rather than queueing another write.
            return await asyncio.wait_for(asyncio.shield(self._store_check), self._answer_within)
        except TimeoutError:
            return f"busy: the store did not answer within {self._answer_within:g} s"

    async def _check_store(self) -> str:
        try:
            await self._store.check_ready()
        except DomainError as exc:
            return exc.message
        except Exception:
            # Unexpected: logged here, since a check that outlived its probe has nobody
            # else to report to.
            log.exception("readiness.store_check_failed")
            return "the store check failed unexpectedly (see the log)"
        return OK
